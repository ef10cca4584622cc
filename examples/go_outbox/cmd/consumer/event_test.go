package main

import "testing"

func TestEventIDMatchesTheReference(t *testing.T) {
	// python3 -c 'from targets.domain import event_id_for; print(event_id_for("0b3c7c62-4a1e-4f7e-9f7e-2f0c1d2e3f40", 2))'
	got := eventIDFor("0b3c7c62-4a1e-4f7e-9f7e-2f0c1d2e3f40", 2)
	if want := "ca3f9efe-9041-52c6-b0fb-4281792f4d0a"; got != want {
		t.Fatalf("eventIDFor = %s, want %s", got, want)
	}
}

func TestDecodeDomainEvent(t *testing.T) {
	raw := `{"event_id":"ca3f9efe-9041-52c6-b0fb-4281792f4d0a","type":"order.paid",` +
		`"order_id":"0b3c7c62-4a1e-4f7e-9f7e-2f0c1d2e3f40","seq":2,"schema_version":1,` +
		`"correlation_id":"5d0e1c9a-3b1f-4c55-8f5e-0f6a7b8c9d01","occurred_at":"2026-01-01T00:00:00+00:00",` +
		`"customer":"c-1","amount_cents":1999,"extra":"ignored"}`
	ev, err := decodeEvent([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type() != "order.paid" || ev.Param("seq") != "2" || ev.Param("amount_cents") != "1999" ||
		ev.Param("order_id") != "0b3c7c62-4a1e-4f7e-9f7e-2f0c1d2e3f40" {
		t.Fatalf("decoded %v", ev.fields)
	}
	if _, ok := ev.fields["extra"]; ok {
		t.Fatal("an unknown field was kept")
	}
}

func TestDecodeNullIsSQLNull(t *testing.T) {
	raw := `{"event_id":null,"type":"order.paid","order_id":"x","seq":1,"schema_version":1,` +
		`"correlation_id":"y","occurred_at":"t","customer":"c","amount_cents":1}`
	ev, err := decodeEvent([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Param("event_id") != nil || ev.Text("event_id") != "None" {
		t.Fatalf("event_id param %v text %q", ev.Param("event_id"), ev.Text("event_id"))
	}
}

func TestDecodeErrorsNameTheProblem(t *testing.T) {
	cases := map[string]string{
		`[1]`:                           "expected a JSON object, got list",
		`"x"`:                           "expected a JSON object, got str",
		`1`:                             "expected a JSON object, got int",
		`1.5`:                           "expected a JSON object, got float",
		`null`:                          "expected a JSON object, got NoneType",
		`true`:                          "expected a JSON object, got bool",
		`{"event_id":1}`:                "missing fields: type, order_id, seq, schema_version, correlation_id, occurred_at, customer, amount_cents",
		`{"status":"paid","version":2}`: "orders row without order_id, customer, amount_cents, correlation_id, updated_at",
	}
	for raw, want := range cases {
		_, err := decodeEvent([]byte(raw))
		if err == nil || err.Error() != want {
			t.Errorf("decodeEvent(%s) = %v, want %q", raw, err, want)
		}
	}
	for _, raw := range []string{"", "nope", "{", `{"a":1} x`} {
		if _, err := decodeEvent([]byte(raw)); err == nil || err.Error()[:9] != "not JSON:" {
			t.Errorf("decodeEvent(%q) = %v, want a not JSON error", raw, err)
		}
	}
	if _, err := decodeEvent(nil); err == nil || err.Error() != "empty message value" {
		t.Errorf("decodeEvent(nil) = %v", err)
	}
}

func TestDecodeOrdersRow(t *testing.T) {
	raw := `{"order_id":"0b3c7c62-4a1e-4f7e-9f7e-2f0c1d2e3f40","customer":"c-1","amount_cents":1999,"status":"paid",` +
		`"version":2,"correlation_id":"5d0e1c9a-3b1f-4c55-8f5e-0f6a7b8c9d01","updated_at":"2026-01-01T00:00:00Z"}`
	ev, err := decodeEvent([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type() != "order.paid" || ev.Param("event_id") != "ca3f9efe-9041-52c6-b0fb-4281792f4d0a" ||
		ev.Param("seq") != "2" || ev.Param("schema_version") != "1" || ev.Param("occurred_at") != "2026-01-01T00:00:00Z" {
		t.Fatalf("decoded %v", ev.fields)
	}
	_, err = decodeEvent([]byte(`{"order_id":"o","customer":"c","amount_cents":1,"status":"lost","version":2,` +
		`"correlation_id":"x","updated_at":"t"}`))
	if err == nil || err.Error() != "orders row with unknown status 'lost'" {
		t.Fatalf("unknown status: %v", err)
	}
}
