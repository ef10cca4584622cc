package orders

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Kind is what a request asks for.
type Kind int

const (
	Health     Kind = iota + 1 // GET /health
	Place                      // POST /orders
	Transition                 // POST /orders/{id}/pay|ship|cancel
)

// Change is one status change: the status it moves to, the one it must be in, the event it is
// (OrderService.TRANSITIONS).
type Change struct {
	To, From, Type string
}

// Actions maps a route's last segment to its change (order_service._ACTIONS and TRANSITIONS).
var Actions = map[string]Change{
	"pay":    {To: "paid", From: "created", Type: Paid},
	"ship":   {To: "shipped", From: "paid", Type: Shipped},
	"cancel": {To: "cancelled", From: "created", Type: Cancelled},
}

// Request is a routed, validated request.
type Request struct {
	Kind     Kind
	OrderID  string // canonical UUID (Place, Transition)
	Customer string // Place
	Amount   int64  // Place
	Change   Change // Transition
}

// Refusal is an answer given without touching the database: a status and its error text.
type Refusal struct {
	Status  int
	Message string
}

// Parse routes and validates a request as OrderService.handle does, in the same order: a GET
// other than /health is 404, a method other than GET or POST 405; a POST's body is decoded
// first (empty means {}; malformed is 400), then routed (unknown is 404), then its fields and
// the order id are checked (400).
func Parse(method, path string, body []byte) (Request, *Refusal) {
	if method == "GET" {
		if path == "/health" {
			return Request{Kind: Health}, nil
		}
		return Request{}, &Refusal{404, "no route GET " + path}
	}
	if method != "POST" {
		return Request{}, &Refusal{405, fmt.Sprintf("method %s not allowed", method)}
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return Request{}, badRequest("DecodeError('JSON is malformed')")
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) == 1 && parts[0] == "orders" {
		return parsePlace(body)
	}
	if len(parts) == 3 && parts[0] == "orders" {
		if change, ok := Actions[parts[2]]; ok {
			id, err := CanonicalUUID(parts[1])
			if err != nil {
				return Request{}, badRequest(err.Error())
			}
			return Request{Kind: Transition, OrderID: id, Change: change}, nil
		}
	}
	return Request{}, &Refusal{404, "no route POST " + path}
}

func badRequest(repr string) *Refusal {
	return &Refusal{400, "bad request: " + repr}
}

// parsePlace reads {order_id, customer, amount_cents} as place's caller does: order_id a UUID
// string, customer text, amount_cents an integer (int() of the value: a float truncates, a
// decimal string parses).
func parsePlace(body []byte) (Request, *Refusal) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return Request{}, badRequest("TypeError('the body is not a JSON object')")
	}
	for _, key := range []string{"order_id", "customer", "amount_cents"} {
		if _, ok := fields[key]; !ok {
			return Request{}, badRequest(fmt.Sprintf("KeyError('%s')", key))
		}
	}
	var rawID string
	if json.Unmarshal(fields["order_id"], &rawID) != nil {
		return Request{}, badRequest("TypeError('order_id must be a string')")
	}
	id, err := CanonicalUUID(rawID)
	if err != nil {
		return Request{}, badRequest(err.Error())
	}
	customer, err := pyStr(fields["customer"])
	if err != nil {
		return Request{}, badRequest(err.Error())
	}
	amount, err := pyInt(fields["amount_cents"])
	if err != nil {
		return Request{}, badRequest(err.Error())
	}
	return Request{Kind: Place, OrderID: id, Customer: customer, Amount: amount}, nil
}

// pyStr is str() of a decoded JSON value for the values a client plausibly sends: a string as
// it is, an integer as its digits, true/false/null as Python spells them. Floats, arrays and
// objects are refused (Python would print its own repr of them: not worth imitating).
func pyStr(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case len(raw) > 0 && raw[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("ValueError('customer: %v')", err)
		}
		return s, nil
	case string(raw) == "true":
		return "True", nil
	case string(raw) == "false":
		return "False", nil
	case string(raw) == "null":
		return "None", nil
	}
	if _, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return string(raw), nil
	}
	return "", fmt.Errorf("TypeError('customer must be a string, got %s')", raw)
}

// pyInt is int() of a decoded JSON value: an integer, a float truncated toward zero, a decimal
// string (surrounding whitespace allowed), a bool as 0 or 1; null and the rest are refused.
func pyInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, fmt.Errorf("ValueError('amount_cents: %v')", err)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("ValueError(\"invalid literal for int() with base 10: '%s'\")", s)
		}
		return n, nil
	}
	switch string(raw) {
	case "true":
		return 1, nil
	case "false":
		return 0, nil
	}
	if n, err := strconv.ParseInt(string(raw), 10, 64); err == nil {
		return n, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || string(raw) == "null" { // null unmarshals as nothing
		return 0, fmt.Errorf("TypeError(\"int() argument must be a string or a real number, not %s\")", raw)
	}
	if math.IsInf(f, 0) || math.IsNaN(f) || math.Abs(f) >= math.MaxInt64 {
		return 0, fmt.Errorf("ValueError('amount_cents out of range: %s')", raw)
	}
	return int64(f), nil
}

// CanonicalUUID is _uuid(text): the canonical lowercase form of a UUID, as str(uuid.UUID(text))
// gives it. Accepted like Python's: any case, hyphens anywhere, braces, a urn:uuid: prefix.
func CanonicalUUID(text string) (string, error) {
	if isCanonical(text) {
		return text, nil // what every client sends: kept as it is
	}
	h := strings.ReplaceAll(strings.ReplaceAll(text, "urn:", ""), "uuid:", "")
	h = strings.ReplaceAll(strings.Trim(h, "{}"), "-", "")
	if len(h) != 32 {
		return "", fmt.Errorf("ValueError('badly formed hexadecimal UUID string')")
	}
	var u [16]byte
	for i := range 16 {
		hi, ok1 := unhex(h[2*i])
		lo, ok2 := unhex(h[2*i+1])
		if !ok1 || !ok2 {
			return "", fmt.Errorf("ValueError(\"invalid literal for int() with base 16: %q\")", h)
		}
		u[i] = hi<<4 | lo
	}
	return format(u), nil
}

func isCanonical(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range 36 {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return false
			}
		}
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
