// Command orders is the order service in outbox mode: an HTTP API whose every change of an
// order commits the order row and its outbox row in one transaction; the forwarder publishes.
// It is targets/order_service.py (ORDER_SERVICE_MODE=outbox) in Go, with the same contract:
//
//	POST /orders {order_id, customer, amount_cents}  201 {order_id, correlation_id}; 409 if it exists
//	POST /orders/{id}/pay|ship|cancel                200 {order_id, correlation_id}; 404 unknown order;
//	                                                 409 wrong status or a concurrent change (optimistic on version)
//	GET  /health                                     200 {pipeline, publish_queue, schema_refused}
//
// 400 for a bad body or order id, 503 when the database failed or no pooled connection came
// within 3 s; every error is {"error": "..."}. A 2xx is answered only after the commit, and
// each request makes a correlation id: the entry point of every chain. Events are
// targets/domain.py's, byte for byte (internal/orders).
//
// The write is the Python service's: one prepared statement (a data-modifying CTE writing the
// order and its outbox row) sent in the same round trip as its BEGIN, then the crash point
// app.before_commit, then COMMIT as a round trip of its own, then app.after_commit. The
// window between the statement and COMMIT is real in any service that writes more than one
// statement per request; the late_commit scenario and the crash point need it.
//
// Configuration comes from the harness's environment (CHAOS_PIPELINE, CHAOS_PG_DSN,
// CHAOS_TOPIC, CHAOS_HTTP_PORT; a missing one exits 2 naming it; ORDER_SERVICE_MODE may only
// be unset or "outbox"). It logs "order service (PIPELINE) listening on 127.0.0.1:PORT" once
// its socket listens; SIGTERM stops it gracefully (exit 0).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"go_outbox/internal/orders"
	"go_outbox/internal/target"
)

const (
	// Requests hold a connection only for their statements, so 32 serve thousands of requests a second.
	poolSize = 32
	minConns = 4
	// Below the clients' 5 s timeout, so an exhausted pool (or an unreachable database) is a clean 503, not a hang.
	poolWait = 3 * time.Second
	// uvicorn's timeout_keep_alive in the Python service: an idle client connection closes after 5 s.
	idleTimeout = 5 * time.Second
)

var log = &target.Log{Name: "order_service"}

func main() {
	switch mode := os.Getenv("ORDER_SERVICE_MODE"); mode {
	case "", "outbox":
	default:
		target.Exit2("orders: ORDER_SERVICE_MODE=%q: this service has the outbox mode only (leave it unset or set outbox)", mode)
	}
	switch v := os.Getenv("CHAOS_VARIANT"); v {
	case "", "correct", "mark_before_ack": // mark_before_ack is the forwarder's mistake: the service is correct
	default:
		target.Exit2("orders: unknown CHAOS_VARIANT %q; this target supports: correct, mark_before_ack", v)
	}
	env := target.Require("CHAOS_PIPELINE", "CHAOS_PG_DSN", "CHAOS_TOPIC", "CHAOS_HTTP_PORT")
	port, err := strconv.Atoi(env["CHAOS_HTTP_PORT"])
	if err != nil || port <= 0 || port > 65535 {
		target.Exit2("orders: CHAOS_HTTP_PORT must be a port number, got %q", env["CHAOS_HTTP_PORT"])
	}
	cfg, err := pgxpool.ParseConfig(env["CHAOS_PG_DSN"])
	if err != nil {
		target.Exit2("orders: bad CHAOS_PG_DSN: %v", err)
	}
	target.ChaosSettings(cfg.ConnConfig)
	cfg.MaxConns, cfg.MinConns = poolSize, minConns
	cfg.AfterConnect = prepare

	stop, stopped := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopped()
	// Database work in hand may run StopGrace past SIGTERM, then it is cut: a black-holed link
	// must not hold the process past the harness's stop grace.
	hardStop, cut := context.WithCancel(context.Background())
	context.AfterFunc(stop, func() { time.AfterFunc(target.StopGrace, cut) })

	// Connections open in the background and on demand: the service is up (and /health answers)
	// while Postgres is still unreachable; a request then gets a 503.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		target.Exit2("orders: bad pool configuration: %v", err)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		log.Error("cannot listen on 127.0.0.1:%d: %v", port, err)
		os.Exit(1)
	}
	svc := newService(pool, env["CHAOS_PIPELINE"], hardStop)
	srv := &http.Server{
		Handler:           svc,
		IdleTimeout:       idleTimeout,
		ReadHeaderTimeout: 10 * time.Second,
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("order service (%s) listening on 127.0.0.1:%d", env["CHAOS_PIPELINE"], port)

	select {
	case <-stop.Done():
	case err := <-served:
		log.Error("serving failed: %v", err)
		pool.Close()
		os.Exit(1)
	}
	// Graceful: no new connections, idle ones closed, requests in hand answered (their database
	// work is cut StopGrace after the signal, so this ends within about that).
	ctx, cancel := context.WithTimeout(context.Background(), target.StopGrace+time.Second)
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	cancel()
	pool.Close()
	log.Info("order service stopped")
}

// Statement names: each is prepared on every connection when the pool opens it.
const (
	placeStmt      = "orders_place"
	transitionStmt = "orders_transition"
	selectStmt     = "orders_select"
)

// prepare runs on every new pooled connection: the service's three statements, prepared once,
// as the Python service prepares them (targets.statements).
func prepare(ctx context.Context, conn *pgx.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, target.OpTimeout)
	defer cancel()
	for _, s := range [...]struct{ name, sql string }{
		{placeStmt, orders.PlaceSQL}, {transitionStmt, orders.TransitionSQL}, {selectStmt, orders.SelectSQL},
	} {
		if _, err := conn.PgConn().Prepare(ctx, s.name, s.sql, nil); err != nil {
			return fmt.Errorf("preparing %s: %w", s.name, err)
		}
	}
	return nil
}
