// Command forwarder is an outbox relay: it polls unsent outbox rows, publishes them to
// Kafka, and marks them sent once the broker acknowledged them.
//
// Correct by default (CHAOS_VARIANT unset or "correct"): rows are selected by
// "sent_at IS NULL", published with an idempotent producer (acks=all), and marked
// sent only after the broker acknowledged them. A row whose publish failed stays
// unsent and is tried again, so delivery is at-least-once: a crash between publish
// and mark re-sends it, and consumers dedupe.
//
// CHAOS_VARIANT=mark_before_ack is the real-world mistake: the batch is marked sent
// before it is produced and produce errors are only logged, so a broker outage longer
// than the delivery timeout loses those rows for good.
//
// Configuration comes from the environment the harness sets (CHAOS_PG_DSN, CHAOS_KAFKA,
// CHAOS_TOPIC, CHAOS_VARIANT, CHAOS_PROCESS, CHAOS_CRASHPOINTS_DIR; optional
// FORWARDER_DELIVERY_TIMEOUT_S, default 10). It logs
// "forwarder started" once it has connected to Postgres and created its Kafka client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"go_outbox/internal/crashpoint"
	"go_outbox/internal/target"
)

const (
	batchSize  = 500
	idlePoll   = 100 * time.Millisecond // how often an idle relay looks for new rows
	retryPause = 500 * time.Millisecond
)

// deliveryTimeout: a record not acknowledged by then fails. FORWARDER_DELIVERY_TIMEOUT_S
// (seconds, optional) overrides the default of 10 s; the target spec declares the value it
// sets, so scenarios can size a broker outage below or above it.
var deliveryTimeout = 10 * time.Second

var log = &target.Log{Name: "forwarder"}

type row struct {
	id      int64
	orderID string
	eventID string
	payload string
}

func main() {
	markBeforeAck := false
	switch v := os.Getenv("CHAOS_VARIANT"); v {
	case "", "correct":
	case "mark_before_ack":
		markBeforeAck = true
	default:
		target.Exit2("forwarder: unknown CHAOS_VARIANT %q; this target supports: correct, mark_before_ack", v)
	}
	env := target.Require("CHAOS_PG_DSN", "CHAOS_KAFKA", "CHAOS_TOPIC")
	if v := os.Getenv("FORWARDER_DELIVERY_TIMEOUT_S"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs <= 0 || secs > 3600 {
			target.Exit2("forwarder: FORWARDER_DELIVERY_TIMEOUT_S must be a number of seconds, got %q", v)
		}
		deliveryTimeout = time.Duration(secs * float64(time.Second))
	}
	pgcfg, err := target.PGConfig(env["CHAOS_PG_DSN"])
	if err != nil {
		target.Exit2("forwarder: bad CHAOS_PG_DSN: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(strings.Split(env["CHAOS_KAFKA"], ",")...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent by default: retries cannot duplicate or reorder
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		// Like librdkafka's message.timeout.ms: the timeout also fails a record whose request is
		// in flight on a dead link (franz-go otherwise waits for its outcome, however long the
		// outage). The correct relay re-sends what failed; consumers dedupe.
		kgo.AllowIdempotentProduceCancellation(),
		// Same partition for the same key as Java clients (Debezium) would choose: murmur2.
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(10*time.Second),
		// After a cut link, look for the broker again within a second (default 5 s): record
		// timeouts are evaluated when a retry fails, so this also keeps them close to the budget.
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(target.KafkaRetryBackoff),
		kgo.RetryTimeout(10*time.Second),
		kgo.WithLogger(kgo.BasicLogger(os.Stdout, kgo.LogLevelWarn, func() string {
			return time.Now().Format("2006-01-02 15:04:05.000") + " kgo "
		})),
	)
	if err != nil {
		target.Exit2("forwarder: bad Kafka client configuration: %v", err)
	}

	var conn *pgx.Conn
	for conn == nil {
		if conn, err = target.Connect(ctx, pgcfg); err != nil {
			log.Warn("connecting to Postgres failed, retrying: %v", err)
			conn = nil
			if target.Sleep(ctx, retryPause) {
				cl.Close()
				return
			}
		}
	}
	mode := "correct"
	if markBeforeAck {
		mode = "mark_before_ack"
	}
	log.Info("forwarder started (%s): publishing outbox rows to %s via %s, delivery timeout %s",
		mode, env["CHAOS_TOPIC"], env["CHAOS_KAFKA"], deliveryTimeout)

	r := &relay{cl: cl, pgcfg: pgcfg, conn: conn, stop: ctx, topic: env["CHAOS_TOPIC"], markBeforeAck: markBeforeAck}
	r.run()

	flushCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = cl.Flush(flushCtx)
	cancel()
	cl.Close()
	target.Close(r.conn)
	log.Info("forwarder stopped")
}

type relay struct {
	cl            *kgo.Client
	pgcfg         *pgx.ConnConfig
	conn          *pgx.Conn       // nil after an error: reconnect before the next statement
	stop          context.Context // done on SIGTERM
	topic         string
	markBeforeAck bool
}

func (r *relay) dropConn() {
	target.Close(r.conn)
	r.conn = nil
}

func (r *relay) run() {
	ctx := r.stop
	for ctx.Err() == nil {
		rows, err := r.unsent()
		if err != nil {
			log.Warn("outbox read failed, retrying: %v", err)
			r.dropConn()
			target.Sleep(ctx, retryPause)
			continue
		}
		if len(rows) == 0 {
			target.Sleep(ctx, idlePoll)
			continue
		}
		ids := make([]int64, len(rows))
		for i, row := range rows {
			ids[i] = row.id
		}
		if r.markBeforeAck {
			if err := r.markSent(ids); err != nil {
				log.Warn("mark-sent failed: %v", err)
				r.dropConn()
				continue
			}
		}
		errs := r.publish(rows)
		var acked []int64
		failed := map[string]int{}
		for i, row := range rows {
			if errs[i] == nil {
				acked = append(acked, row.id)
			} else {
				failed[errs[i].Error()]++
			}
		}
		nFailed := len(rows) - len(acked)
		if r.markBeforeAck {
			if nFailed > 0 {
				// The mistake: these rows are already marked and will never be sent again.
				log.Warn("%d of %d rows not acknowledged and will not be retried: %s", nFailed, len(rows), summary(failed))
			}
			continue
		}
		if len(acked) > 0 {
			crashpoint.Point("relay.after_publish") // acknowledged, not yet marked: the re-send window
			if err := r.markSent(acked); err != nil {
				// Published but not marked: they will be published again (at-least-once).
				log.Warn("mark-sent failed for %d rows, they will be re-sent: %v", len(acked), err)
				r.dropConn()
			}
		}
		if nFailed > 0 {
			log.Warn("%d of %d rows not acknowledged, retrying: %s", nFailed, len(rows), summary(failed))
			target.Sleep(ctx, retryPause)
		}
	}
}

// unsent reads the next batch of unsent rows, oldest first.
func (r *relay) unsent() ([]row, error) {
	if r.conn == nil {
		conn, err := target.Connect(r.stop, r.pgcfg)
		if err != nil {
			return nil, err
		}
		r.conn = conn
	}
	ctx, cancel := target.OpContext(r.stop, target.OpTimeout)
	defer cancel()
	rs, err := r.conn.Query(ctx,
		"SELECT id, order_id::text, event_id::text, payload FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
		batchSize)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rs, func(rw pgx.CollectableRow) (row, error) {
		var x row
		err := rw.Scan(&x.id, &x.orderID, &x.eventID, &x.payload)
		return x, err
	})
}

func (r *relay) markSent(ids []int64) error {
	if r.conn == nil {
		conn, err := target.Connect(r.stop, r.pgcfg)
		if err != nil {
			return err
		}
		r.conn = conn
	}
	ctx, cancel := target.OpContext(r.stop, target.OpTimeout)
	defer cancel()
	_, err := r.conn.Exec(ctx, "UPDATE outbox SET sent_at = clock_timestamp() WHERE id = ANY($1)", ids)
	return err
}

type result struct {
	i   int
	err error
}

// publish produces every row and waits for every delivery result (or the delivery
// timeout plus a margin); errs[i] is nil only for a row the broker acknowledged.
func (r *relay) publish(rows []row) []error {
	errs := make([]error, len(rows))
	for i := range errs {
		errs[i] = fmt.Errorf("no delivery report")
	}
	// Buffered for every result, so a late report never blocks the client.
	results := make(chan result, len(rows))
	// The batch's context bounds in-flight requests too (AllowIdempotentProduceCancellation).
	ctx, cancel := context.WithTimeout(context.Background(), deliveryTimeout)
	defer cancel()
	for i, row := range rows {
		rec := &kgo.Record{
			Topic: r.topic,
			Key:   []byte(row.orderID),
			Value: []byte(row.payload),
			Headers: []kgo.RecordHeader{
				{Key: "event_id", Value: []byte(row.eventID)},
				// The provenance header `chaos trace` shows beside the offset (harness/sdk/provenance.py).
				{Key: "chaos-outbox-id", Value: []byte(strconv.FormatInt(row.id, 10))},
			},
		}
		r.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { results <- result{i, err} })
	}
	// Every record gets exactly one result within the delivery timeout (give or take a retry);
	// on SIGTERM stop waiting soon: what is not acknowledged stays unsent and is sent again.
	wait, stopWaiting := target.OpContext(r.stop, deliveryTimeout+5*time.Second)
	defer stopWaiting()
	for got := 0; got < len(rows); got++ {
		select {
		case res := <-results:
			errs[res.i] = res.err
		case <-wait.Done():
			return errs
		}
	}
	return errs
}

func summary(errs map[string]int) string {
	parts := make([]string, 0, len(errs))
	for e, n := range errs {
		parts = append(parts, fmt.Sprintf("%s (x%d)", e, n))
	}
	sort.Strings(parts)
	s := strings.Join(parts, "; ")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
