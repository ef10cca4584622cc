package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestAnswersAreThePythonServicesShapes(t *testing.T) {
	var ok map[string]string
	if err := json.Unmarshal(answer("o-1", "c-1"), &ok); err != nil || len(ok) != 2 || ok["order_id"] != "o-1" || ok["correlation_id"] != "c-1" {
		t.Fatalf("answer: %v %v", ok, err)
	}
	// msgspec writes <, > and & as they are; encoding/json's default would escape them.
	if got := string(errorBody(`no route POST /a<b>&c "q"`)); got != `{"error":"no route POST /a<b>&c \"q\""}` {
		t.Fatalf("errorBody: %s", got)
	}
}

func TestDatabaseErrorsAreNamedAsPsycopgNamesThem(t *testing.T) {
	cases := map[error]string{
		&pgconn.PgError{Code: "23505"}:                            "UniqueViolation",
		&pgconn.PgError{Code: "57014"}:                            "QueryCanceled",
		&pgconn.PgError{Code: "08006"}:                            "OperationalError",
		&pgconn.PgError{Code: "22P02"}:                            "DataError",
		&pgconn.PgError{Code: "XX000"}:                            "DatabaseError",
		fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: "40001"}): "SerializationFailure",
		errors.New("dial tcp: connection refused"):                "OperationalError",
	}
	for err, want := range cases {
		if got := errorName(err); got != want {
			t.Errorf("errorName(%v) = %s, want %s", err, got, want)
		}
	}
}
