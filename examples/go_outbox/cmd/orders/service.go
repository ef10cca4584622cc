package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"go_outbox/internal/crashpoint"
	"go_outbox/internal/orders"
)

// maxBody bounds a request body: the service's bodies are a hundred bytes.
const maxBody = 1 << 20

type service struct {
	pool   *pgxpool.Pool
	health []byte
	// Every request's database work derives from this: cancelled StopGrace after SIGTERM. Not from
	// the request's context: a request whose client gave up still finishes its transaction, as the
	// Python service's does, rather than being cut between its statement and its commit.
	base context.Context
}

func newService(pool *pgxpool.Pool, pipeline string, base context.Context) *service {
	health, _ := json.Marshal(struct {
		Pipeline      string `json:"pipeline"`
		PublishQueue  int    `json:"publish_queue"`
		SchemaRefused *int   `json:"schema_refused"`
	}{Pipeline: pipeline}) // outbox mode publishes nothing itself, and has no schema gate
	return &service{pool: pool, health: health, base: base}
}

var jsonType = []string{"application/json"}

func (s *service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, out := s.handle(r)
	h := w.Header()
	h["Content-Type"] = jsonType
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	h["Date"] = nil // as the Python service (date_header=False): nothing a client reads
	// Head and body go out in one write: net/http buffers both and flushes once the handler returns.
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (s *service) handle(r *http.Request) (int, []byte) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		return http.StatusBadRequest, errorBody("bad request: the body could not be read whole")
	}
	req, refusal := orders.Parse(r.Method, r.URL.Path, body)
	if refusal != nil {
		return refusal.Status, errorBody(refusal.Message)
	}
	switch req.Kind {
	case orders.Place:
		return s.place(req)
	case orders.Transition:
		return s.transition(req)
	default:
		return http.StatusOK, s.health
	}
}

// place inserts the order and its order.created outbox row (version 1); 409 if the order exists.
func (s *service) place(req orders.Request) (int, []byte) {
	correlationID := orders.NewCorrelationID()
	event := orders.NewEvent(orders.Created, req.OrderID, 1, correlationID, req.Customer, req.Amount, time.Now())
	payload := event.Encode()
	ctx, cancel := context.WithTimeout(s.base, opBudget)
	defer cancel()
	conn, err := s.acquire(ctx)
	if err != nil {
		return unavailable(err, poolErrorName(err))
	}
	defer conn.Release()
	params := [][]byte{[]byte(req.OrderID), []byte(req.Customer), strconv.AppendInt(nil, req.Amount, 10),
		[]byte(correlationID), []byte(event.EventID), []byte("1"), []byte(event.Type), payload}
	written, err := s.write(ctx, conn.Conn().PgConn(), placeStmt, params, event.Type)
	if err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != uniqueViolation {
			return unavailable(err, "")
		}
		written = false // a concurrent place of the same order won
	}
	if !written {
		return http.StatusConflict, errorBody("order " + req.OrderID + " already exists")
	}
	return http.StatusCreated, answer(req.OrderID, correlationID)
}

// transition moves an order on, optimistic on its version: a concurrent change makes it a 409.
func (s *service) transition(req orders.Request) (int, []byte) {
	correlationID := orders.NewCorrelationID()
	change := req.Change
	ctx, cancel := context.WithTimeout(s.base, opBudget)
	defer cancel()
	conn, err := s.acquire(ctx)
	if err != nil {
		return unavailable(err, poolErrorName(err))
	}
	defer conn.Release()
	pg := conn.Conn().PgConn()
	res := pg.ExecPrepared(ctx, selectStmt, [][]byte{[]byte(req.OrderID)}, nil, nil).Read()
	if res.Err != nil {
		return unavailable(res.Err, "")
	}
	if len(res.Rows) == 0 {
		return http.StatusNotFound, errorBody("no order " + req.OrderID)
	}
	row := res.Rows[0] // customer, amount_cents, version, status (text)
	customer, status := string(row[0]), string(row[3])
	amount, err1 := strconv.ParseInt(string(row[1]), 10, 64)
	version, err2 := strconv.Atoi(string(row[2]))
	if err := errors.Join(err1, err2); err != nil {
		return unavailable(err, "DataError")
	}
	if status != change.From {
		return http.StatusConflict, errorBody("order " + req.OrderID + " is " + status + ", not " + change.From +
			": cannot become " + change.To)
	}
	// The event exists only now that the row says the change may happen: made and encoded once.
	event := orders.NewEvent(change.Type, req.OrderID, version+1, correlationID, customer, amount, time.Now())
	params := [][]byte{[]byte(change.To), []byte(correlationID), []byte(req.OrderID), []byte(change.From),
		[]byte(strconv.Itoa(version)), []byte(event.EventID), []byte(strconv.Itoa(event.Seq)), []byte(event.Type),
		event.Encode()}
	written, err := s.write(ctx, pg, transitionStmt, params, event.Type)
	if err != nil {
		return unavailable(err, "")
	}
	if !written {
		return http.StatusConflict, errorBody("order " + req.OrderID + " changed concurrently; it is no longer " +
			change.From + " at version " + strconv.Itoa(version))
	}
	return http.StatusOK, answer(req.OrderID, correlationID)
}

// opBudget bounds a request's database work on the client side (the pool wait included): a
// statement_timeout cannot help when a cut link drops the server's answer. pgx closes the
// connection when it expires, and the pool replaces it.
const opBudget = 10 * time.Second

func (s *service) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, poolWait)
	defer cancel()
	return s.pool.Acquire(ctx)
}

// write runs one prepared write in a transaction: BEGIN and the statement in one round trip
// (one Sync), then COMMIT in a round trip of its own, with the crash points between and after.
// It reports whether the statement wrote its outbox row (the order row was written). As in the
// Python service, a statement that wrote nothing still commits (an empty transaction) and
// passes no crash point.
func (s *service) write(ctx context.Context, pg *pgconn.PgConn, stmt string, params [][]byte, eventType string) (bool, error) {
	batch := &pgconn.Batch{}
	batch.ExecParams("BEGIN", nil, nil, nil, nil)
	batch.ExecPrepared(stmt, params, nil, nil)
	results, err := pg.ExecBatch(ctx, batch).ReadAll()
	if err == nil && len(results) != 2 {
		err = errors.New("BEGIN and the statement did not both answer")
	}
	if err != nil {
		rollback(ctx, pg)
		return false, err
	}
	written := results[1].CommandTag.RowsAffected() == 1
	if written {
		crashpoint.PointFor("app.before_commit", eventType) // written, not committed: the request fails whole
	}
	if err := pg.Exec(ctx, "COMMIT").Close(); err != nil {
		return false, err
	}
	if written {
		crashpoint.PointFor("app.after_commit", eventType) // committed, not yet answered: the outcome is unknown to the client
	}
	return written, nil
}

// rollback ends a transaction a failed statement left open, so the connection goes back to the
// pool clean (pgxpool destroys one returned inside a transaction). A broken one is closed already.
func rollback(ctx context.Context, pg *pgconn.PgConn) {
	if pg.IsClosed() || pg.TxStatus() == 'I' {
		return
	}
	_ = pg.Exec(ctx, "ROLLBACK").Close()
}

const uniqueViolation = "23505"

// unavailable is the 503 of a request the database failed: not committed (or, for a COMMIT
// whose answer was lost, not known to be). The error is named as psycopg names it in the
// Python service's answers.
func unavailable(err error, name string) (int, []byte) {
	if name == "" {
		name = errorName(err)
	}
	log.Warn("database error, request failed: %v", err)
	return http.StatusServiceUnavailable, errorBody("database unavailable: " + name)
}

var sqlstateNames = map[string]string{
	uniqueViolation: "UniqueViolation", "57014": "QueryCanceled", "40001": "SerializationFailure",
	"40P01": "DeadlockDetected", "57P01": "AdminShutdown", "25P02": "InFailedSqlTransaction",
	"53300": "TooManyConnections", "22003": "NumericValueOutOfRange", "3D000": "InvalidCatalogName",
	"42P01": "UndefinedTable",
}

var sqlstateClasses = map[string]string{
	"08": "OperationalError", "22": "DataError", "23": "IntegrityError", "40": "TransactionRollbackError",
	"42": "ProgrammingError", "53": "OperationalError", "57": "OperationalError",
}

// poolErrorName names a failed acquire: psycopg_pool's PoolTimeout when no connection came in
// time; a connect that failed outright (a refused link) is the connection's error.
func poolErrorName(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "PoolTimeout"
	}
	return errorName(err)
}

func errorName(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		if name, ok := sqlstateNames[pgErr.Code]; ok {
			return name
		}
		if name, ok := sqlstateClasses[pgErr.Code[:2]]; ok {
			return name
		}
		return "DatabaseError"
	}
	return "OperationalError" // the link, a timeout, a closed connection
}

func answer(orderID, correlationID string) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"order_id":"`...)
	b = append(b, orderID...) // canonical UUIDs: nothing to escape
	b = append(b, `","correlation_id":"`...)
	b = append(b, correlationID...)
	return append(b, `"}`...)
}

func errorBody(msg string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // msgspec's answers do not escape <, > and &
	_ = enc.Encode(struct {
		Error string `json:"error"`
	}{msg})
	return bytes.TrimRight(buf.Bytes(), "\n")
}
