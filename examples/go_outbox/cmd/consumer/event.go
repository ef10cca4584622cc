package main

import (
	"bytes"
	"crypto/sha1"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// eventFields are the fields of a domain event, in the order the reference lists them.
var eventFields = []string{
	"event_id", "type", "order_id", "seq", "schema_version", "correlation_id", "occurred_at", "customer", "amount_cents",
}

// Event is one decoded event. Like the reference (a Python dataclass filled from the
// JSON object), decoding checks that every field is present, not the JSON type of each
// value: each value goes to Postgres as text with a cast, so a value Postgres rejects
// fails the event's transaction (a message fault: retried, then dead-lettered), and a
// type this consumer does not apply is skipped whatever its other values are.
type Event struct {
	fields map[string]any // JSON values: string, json.Number, bool, nil, []any, map[string]any
}

// Type is the event's type, "" when it is not a JSON string.
func (e Event) Type() string {
	s, _ := e.fields["type"].(string)
	return s
}

// Param is the field's value as a query parameter: SQL NULL for JSON null, else its text.
func (e Event) Param(name string) any {
	v := e.fields[name]
	if v == nil {
		return nil
	}
	return pyStr(v)
}

// Text is the field's value for a log line or a dead-letter reason.
func (e Event) Text(name string) string { return pyStr(e.fields[name]) }

// decodeEvent parses an event (either shape, as the reference's decode_event does); the
// error names what was wrong and the consumer dead-letters the record at once.
func decodeEvent(raw []byte) (Event, error) {
	if raw == nil {
		return Event{}, errors.New("empty message value")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var data any
	if err := dec.Decode(&data); err != nil {
		return Event{}, fmt.Errorf("not JSON: %v", err)
	}
	if dec.More() {
		return Event{}, errors.New("not JSON: extra data after the value")
	}
	obj, ok := data.(map[string]any)
	if !ok {
		return Event{}, fmt.Errorf("expected a JSON object, got %s", pyTypeName(data))
	}
	_, hasID := obj["event_id"]
	_, hasStatus := obj["status"]
	_, hasVersion := obj["version"]
	if !hasID && hasStatus && hasVersion {
		return eventFromRow(obj)
	}
	var missing []string
	for _, f := range eventFields {
		if _, ok := obj[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return Event{}, fmt.Errorf("missing fields: %s", strings.Join(missing, ", "))
	}
	fields := make(map[string]any, len(eventFields))
	for _, f := range eventFields {
		fields[f] = obj[f]
	}
	return Event{fields}, nil
}

// The cdc pipeline's record value is the orders row after the change (Debezium's
// ExtractNewRecordState, schemas disabled); it maps to the same event.
var (
	rowFields   = []string{"order_id", "customer", "amount_cents", "status", "version", "correlation_id", "updated_at"}
	statusEvent = map[string]string{
		"created": "order.created", "paid": "order.paid", "shipped": "order.shipped", "cancelled": "order.cancelled",
	}
	// Namespace of event ids: uuid5(eventNamespace, "<order_id>:<version>") (targets/domain.py).
	eventNamespace = [16]byte{0x6f, 0x1c, 0x3a, 0x52, 0x8a, 0x4e, 0x4c, 0x0e, 0x9a, 0x51, 0x3c, 0x1d, 0x2b, 0x7e, 0x9f, 0x10}
)

const schemaVersion = 1

func eventFromRow(row map[string]any) (Event, error) {
	var missing []string
	for _, f := range rowFields {
		if _, ok := row[f]; !ok {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return Event{}, fmt.Errorf("orders row without %s", strings.Join(missing, ", "))
	}
	status := pyStr(row["status"])
	typ, ok := statusEvent[status]
	if !ok {
		return Event{}, fmt.Errorf("orders row with unknown status '%s'", status)
	}
	orderID := pyStr(row["order_id"])
	version, err := pyInt(row["version"])
	if err != nil {
		return Event{}, err
	}
	amount, err := pyInt(row["amount_cents"])
	if err != nil {
		return Event{}, err
	}
	return Event{map[string]any{
		"event_id":       eventIDFor(orderID, version),
		"type":           typ,
		"order_id":       orderID,
		"seq":            json.Number(strconv.FormatInt(version, 10)),
		"schema_version": json.Number(strconv.Itoa(schemaVersion)),
		"correlation_id": pyStr(row["correlation_id"]),
		"occurred_at":    pyStr(row["updated_at"]),
		"customer":       pyStr(row["customer"]),
		"amount_cents":   json.Number(strconv.FormatInt(amount, 10)),
	}}, nil
}

// eventIDFor is the id of the event of one row version: a name-based (SHA-1) UUID.
func eventIDFor(orderID string, version int64) string {
	h := sha1.New()
	h.Write(eventNamespace[:])
	fmt.Fprintf(h, "%s:%d", orderID, version)
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// pyStr renders a JSON value as Python's str() renders what json.loads made of it.
func pyStr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// pyInt converts like Python's int(): an integral number, a float (truncated) or a decimal string.
func pyInt(v any) (int64, error) {
	switch x := v.(type) {
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n, nil
		}
		if f, err := x.Float64(); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return int64(f), nil
		}
	case string:
		if n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64); err == nil {
			return n, nil
		}
		return 0, fmt.Errorf("invalid literal for int() with base 10: '%s'", x)
	}
	return 0, fmt.Errorf("int() argument must be a string or a number, not '%s'", pyTypeName(v))
}

func pyTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "NoneType"
	case bool:
		return "bool"
	case string:
		return "str"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	case json.Number:
		if _, err := x.Int64(); err == nil || !strings.ContainsAny(x.String(), ".eE") {
			return "int"
		}
		return "float"
	}
	return fmt.Sprintf("%T", v)
}
