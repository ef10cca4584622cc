package orders

import (
	"strings"
	"testing"
)

const id = "3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5d"

func TestRoutes(t *testing.T) {
	cases := []struct {
		method, path, body string
		kind               Kind
		to                 string
		status             int
	}{
		{"GET", "/health", "", Health, "", 0},
		{"GET", "/orders", "", 0, "", 404},
		{"DELETE", "/orders", "", 0, "", 405},
		{"POST", "/orders", `{"order_id":"` + id + `","customer":"c","amount_cents":5}`, Place, "", 0},
		{"POST", "/orders/", `{"order_id":"` + id + `","customer":"c","amount_cents":5}`, Place, "", 0},
		{"POST", "/orders/" + id + "/pay", "", Transition, "paid", 0},
		{"POST", "/orders/" + id + "/ship", "{}", Transition, "shipped", 0},
		{"POST", "/orders/" + strings.ToUpper(id) + "/cancel", "[1]", Transition, "cancelled", 0},
		{"POST", "/orders/" + id + "/refund", "", 0, "", 404},
		{"POST", "/orders/" + id, "", 0, "", 404},
		{"POST", "/payments", "", 0, "", 404},
		{"POST", "/orders/not-a-uuid/pay", "", 0, "", 400},
		{"POST", "/orders/" + id + "/pay", "{", 0, "", 400}, // the body is decoded before the route
		{"POST", "/nowhere", "not json", 0, "", 400},        // ... even for an unknown route, as in Python
		{"POST", "/orders", `{"customer":"c","amount_cents":5}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":"` + id + `","amount_cents":5}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":"` + id + `","customer":"c"}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":"nope","customer":"c","amount_cents":5}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":7,"customer":"c","amount_cents":5}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":"` + id + `","customer":"c","amount_cents":"five"}`, 0, "", 400},
		{"POST", "/orders", `{"order_id":"` + id + `","customer":"c","amount_cents":null}`, 0, "", 400},
		{"POST", "/orders", `["order_id"]`, 0, "", 400},
		{"POST", "/orders", "", 0, "", 400}, // an empty body is {}: order_id missing
	}
	for _, c := range cases {
		req, refusal := Parse(c.method, c.path, []byte(c.body))
		switch {
		case c.status != 0 && refusal == nil:
			t.Errorf("%s %s %s: routed to %+v, want %d", c.method, c.path, c.body, req, c.status)
		case c.status != 0 && refusal.Status != c.status:
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, refusal.Status, refusal.Message, c.status)
		case c.status == 0 && refusal != nil:
			t.Errorf("%s %s %s: refused %d %s", c.method, c.path, c.body, refusal.Status, refusal.Message)
		case c.status == 0 && (req.Kind != c.kind || req.Change.To != c.to):
			t.Errorf("%s %s: %+v, want kind %d to %q", c.method, c.path, req, c.kind, c.to)
		case c.kind == Transition && req.OrderID != id:
			t.Errorf("%s %s: order id %s, want the canonical %s", c.method, c.path, req.OrderID, id)
		}
	}
}

func TestRefusalsSayWhatPythonSays(t *testing.T) {
	_, r := Parse("GET", "/nope", nil)
	if r.Message != "no route GET /nope" {
		t.Error(r.Message)
	}
	_, r = Parse("POST", "/orders", []byte(`{"customer":"c","amount_cents":5}`))
	if r.Message != "bad request: KeyError('order_id')" {
		t.Error(r.Message)
	}
	_, r = Parse("POST", "/orders/xyz/pay", nil)
	if r.Message != "bad request: ValueError('badly formed hexadecimal UUID string')" {
		t.Error(r.Message)
	}
	_, r = Parse("PUT", "/orders", nil)
	if r.Message != "method PUT not allowed" {
		t.Error(r.Message)
	}
}

func TestPlaceBodyReadsAsPythonsIntAndStr(t *testing.T) {
	cases := []struct {
		customer, amount string
		wantCustomer     string
		wantAmount       int64
	}{
		{`"customer-042"`, `12345`, "customer-042", 12345},
		{`"caf\u00e9"`, `-7`, "café", -7},
		{`42`, `12.9`, "42", 12},       // str(42); int(12.9) truncates
		{`true`, `" 17 "`, "True", 17}, // int(" 17 ") parses
		{`null`, `false`, "None", 0},
	}
	for _, c := range cases {
		body := `{"order_id":"` + strings.ToUpper(id) + `","customer":` + c.customer + `,"amount_cents":` + c.amount + `}`
		req, refusal := Parse("POST", "/orders", []byte(body))
		if refusal != nil {
			t.Errorf("%s: refused %s", body, refusal.Message)
			continue
		}
		if req.OrderID != id || req.Customer != c.wantCustomer || req.Amount != c.wantAmount {
			t.Errorf("%s: %+v", body, req)
		}
	}
}
