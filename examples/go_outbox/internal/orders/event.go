// Package orders is the order domain as the reference Python service (targets/domain.py,
// targets/order_service.py) defines it, in Go: event ids, the event's JSON, the request
// routes and bodies, and the service's SQL. Everything here is pure; the service that
// talks to Postgres and HTTP is cmd/orders.
//
// The events must be byte-for-byte what the Python service writes: the consumers (Python
// and Go) decode them, the harness's oracle derives event ids the same way, and a run may
// mix the two services' rows. golden_test.go holds the Python outputs these functions are
// checked against (and re-checks them against Python itself when it is importable).
package orders

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
)

// SchemaVersion is targets.domain.SCHEMA_VERSION: the version of the event's schema.
const SchemaVersion = 1

// Event types (targets.domain.EventType values).
const (
	Created   = "order.created"
	Paid      = "order.paid"
	Shipped   = "order.shipped"
	Cancelled = "order.cancelled"
)

// eventNamespace is targets.domain.EVENT_NAMESPACE, 6f1c3a52-8a4e-4c0e-9a51-3c1d2b7e9f10, as bytes.
var eventNamespace = [16]byte{0x6f, 0x1c, 0x3a, 0x52, 0x8a, 0x4e, 0x4c, 0x0e, 0x9a, 0x51, 0x3c, 0x1d, 0x2b, 0x7e, 0x9f, 0x10}

// EventID is the id of the event of one row version, uuid5(EVENT_NAMESPACE, "<order_id>:<version>"):
// deterministic, so a redelivered event dedupes. orderID must be canonical (CanonicalUUID).
func EventID(orderID string, version int) string {
	h := sha1.New()
	h.Write(eventNamespace[:])
	h.Write([]byte(orderID))
	h.Write([]byte{':'})
	h.Write(strconv.AppendInt(nil, int64(version), 10))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 4122 variant
	return format(u)
}

// NewCorrelationID is a random (version 4) UUID string, as str(uuid.uuid4()) makes it.
func NewCorrelationID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (it panics if the kernel cannot supply randomness)
	u[6] = (u[6] & 0x0f) | 0x40
	u[8] = (u[8] & 0x3f) | 0x80
	return format(u)
}

func format(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// Event is targets.domain.Event: one change of one order.
type Event struct {
	EventID       string
	Type          string
	OrderID       string
	Seq           int
	SchemaVersion int
	CorrelationID string
	OccurredAt    string
	Customer      string
	AmountCents   int64
}

// NewEvent is the event of version seq of an order, made now (OrderService._event).
func NewEvent(type_ string, orderID string, seq int, correlationID, customer string, amount int64, now time.Time) Event {
	return Event{EventID: EventID(orderID, seq), Type: type_, OrderID: orderID, Seq: seq, SchemaVersion: SchemaVersion,
		CorrelationID: correlationID, OccurredAt: IsoFormat(now), Customer: customer, AmountCents: amount}
}

// Encode is Event.encode: json.dumps of the fields in declaration order, separators (",", ":"),
// ensure_ascii (the default), so the same event is the same bytes whichever service wrote it.
func (e Event) Encode() []byte {
	b := make([]byte, 0, 320)
	b = append(b, `{"event_id":`...)
	b = appendPyString(b, e.EventID)
	b = append(b, `,"type":`...)
	b = appendPyString(b, e.Type)
	b = append(b, `,"order_id":`...)
	b = appendPyString(b, e.OrderID)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, int64(e.Seq), 10)
	b = append(b, `,"schema_version":`...)
	b = strconv.AppendInt(b, int64(e.SchemaVersion), 10)
	b = append(b, `,"correlation_id":`...)
	b = appendPyString(b, e.CorrelationID)
	b = append(b, `,"occurred_at":`...)
	b = appendPyString(b, e.OccurredAt)
	b = append(b, `,"customer":`...)
	b = appendPyString(b, e.Customer)
	b = append(b, `,"amount_cents":`...)
	b = strconv.AppendInt(b, e.AmountCents, 10)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendPyString appends s as Python's json.dumps writes a str with ensure_ascii: printable
// ASCII as is, the usual short escapes, everything else as \uXXXX (lowercase; UTF-16
// surrogate pairs above U+FFFF). Go's encoding/json differs (raw UTF-8, \u003c for "<").
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b = append(b, '\\', '"')
			case '\\':
				b = append(b, '\\', '\\')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = appendU(b, rune(c))
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:]) // invalid UTF-8 reads as U+FFFD
		i += size
		if r > 0xffff {
			r -= 0x10000
			b = appendU(b, 0xd800+(r>>10))
			b = appendU(b, 0xdc00+(r&0x3ff))
		} else {
			b = appendU(b, r)
		}
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// IsoFormat is datetime.isoformat() of an aware UTC datetime: microseconds (truncated, as
// Python's clock gives them), and no fraction at all when they are zero, as Python does.
func IsoFormat(t time.Time) string {
	t = t.UTC()
	b := make([]byte, 0, 32)
	b = t.AppendFormat(b, "2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		b = append(b, '.')
		s := strconv.Itoa(us)
		for range 6 - len(s) {
			b = append(b, '0')
		}
		b = append(b, s...)
	}
	return string(append(b, "+00:00"...))
}
