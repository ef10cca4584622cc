// Command consumer is the payment consumer (one charge per paid order, exactly once) or the
// notification consumer (one email per created order, exactly once), as CHAOS_CONSUMER says.
//
// For each event of its type (order.paid, order.created) it writes the effect and its
// processed-event record in one transaction; the record's primary key (consumer, event_id)
// is the unique constraint that turns a redelivered event into a no-op. Events of other types are not its
// business: skipped (not recorded) and their offsets committed. Offsets are committed
// only after the effect committed (auto-commit off), so a crash redelivers rather than
// loses. An undecodable record goes to the dead-letter topic at once (retrying cannot
// help); an event the database rejects (a data or integrity error) is tried 3 times,
// then dead-lettered; a database that is unreachable or failing otherwise is not the
// event's fault, so the consumer keeps retrying it (lag, not loss).
//
// Configuration comes from the environment the harness sets (CHAOS_CONSUMER, CHAOS_PG_DSN,
// CHAOS_KAFKA, CHAOS_TOPIC, CHAOS_GROUP, CHAOS_DLQ_TOPIC, CHAOS_PROCESS, CHAOS_CRASHPOINTS_DIR). It
// logs "consumer ready" when its first group assignment arrives. SIGTERM: it finishes
// the record in hand, commits it, leaves the group and exits 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"go_outbox/internal/crashpoint"
	"go_outbox/internal/target"
)

// What each consumer of the order domain this command can be (CHAOS_CONSUMER) acts on, and
// the table its effect goes to (targets.domain's EFFECT_TABLES and OrdersDomain.decl).
var consumers = map[string]struct{ acts, table string }{
	"payment":      {"order.paid", "payment_charges"},        // one charge per paid order
	"notification": {"order.created", "notification_emails"}, // one confirmation email per created order
}

// This process's consumer: set once in main, before anything else runs.
var (
	consumerName = "payment"
	actsOn       = "order.paid"
	effectTable  = "payment_charges"
)

const (
	maxTries   = 3
	pollBatch  = 100
	commitWait = 10 * time.Second
	dlqTimeout = 25 * time.Second // shorter than the wait in deadLetter, so every attempt ends in a report
)

var log = &target.Log{Name: "consumer." + consumerName}

func main() {
	name := os.Getenv("CHAOS_CONSUMER")
	kind, ok := consumers[name]
	if !ok {
		target.Exit2("consumer: CHAOS_CONSUMER=%q: this command is the payment or the notification consumer "+
			"(set consumer = \"payment\" or \"notification\" in the target spec)", name)
	}
	consumerName, actsOn, effectTable = name, kind.acts, kind.table
	log = &target.Log{Name: "consumer." + consumerName}
	switch v := os.Getenv("CHAOS_VARIANT"); v {
	case "", "correct", "mark_before_ack": // mark_before_ack is the relay's mistake: the consumer is correct
	default:
		target.Exit2("consumer: unknown CHAOS_VARIANT %q; this target supports: correct, mark_before_ack", v)
	}
	env := target.Require("CHAOS_PG_DSN", "CHAOS_KAFKA", "CHAOS_TOPIC", "CHAOS_GROUP", "CHAOS_DLQ_TOPIC")
	pgcfg, err := target.PGConfig(env["CHAOS_PG_DSN"])
	if err != nil {
		target.Exit2("consumer: bad CHAOS_PG_DSN: %v", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	c := &consumer{pgcfg: pgcfg, stop: ctx, topic: env["CHAOS_TOPIC"], dlqTopic: env["CHAOS_DLQ_TOPIC"],
		pending: map[int32]*kgo.Record{}}
	seeds := strings.Split(env["CHAOS_KAFKA"], ",")
	kgoLog := kgo.WithLogger(kgo.BasicLogger(os.Stdout, kgo.LogLevelWarn, func() string {
		return time.Now().Format("2006-01-02 15:04:05.000") + " kgo "
	}))
	var ready sync.Once
	c.cl, err = kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.ConsumerGroup(env["CHAOS_GROUP"]),
		kgo.ConsumeTopics(c.topic),
		// Correct: commit only after the effect committed, never on a timer.
		kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), // a new group starts at the earliest offset
		kgo.SessionTimeout(10*time.Second),
		// Rebalances wait until the polled records are handled (as librdkafka's callbacks wait
		// for poll), so an offset is never committed for a partition this member lost.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			log.Info("assigned %v", partitionList(parts[c.topic]))
			ready.Do(func() { log.Info("consumer ready: reading %s as group %s", c.topic, env["CHAOS_GROUP"]) })
		}),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, parts map[string][]int32) {
			log.Info("revoked %v", partitionList(parts[c.topic]))
			if len(parts[c.topic]) > 0 {
				c.commitPending(parts[c.topic]) // the last chance to commit what was applied
			}
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, parts map[string][]int32) {
			if len(parts[c.topic]) > 0 {
				log.Warn("lost %v", partitionList(parts[c.topic]))
			}
			c.dropPending(parts[c.topic]) // the new owner gets them again; processed_events dedupes
		}),
		kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(10*time.Second),
		// After a cut link, look for the broker again within a second (default 5 s).
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(target.KafkaRetryBackoff),
		kgo.RetryTimeout(10*time.Second),
		kgoLog,
	)
	if err != nil {
		target.Exit2("consumer: bad Kafka client configuration: %v", err)
	}
	c.dlq, err = kgo.NewClient(
		kgo.SeedBrokers(seeds...),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotent by default
		kgo.RecordDeliveryTimeout(dlqTimeout),
		kgo.AllowIdempotentProduceCancellation(),
		kgo.DialTimeout(2*time.Second),
		kgo.RequestTimeoutOverhead(10*time.Second),
		// After a cut link, look for the broker again within a second (default 5 s): record
		// timeouts are evaluated when a retry fails, so this also keeps them close to 25 s.
		kgo.MetadataMinAge(time.Second),
		kgo.RetryBackoffFn(target.KafkaRetryBackoff),
		kgoLog,
	)
	if err != nil {
		target.Exit2("consumer: bad Kafka client configuration: %v", err)
	}
	log.Info("%s consumer (correct) reading %s as group %s via %s", consumerName, c.topic, env["CHAOS_GROUP"], env["CHAOS_KAFKA"])

	c.run()

	c.cl.AllowRebalance()
	c.commitPending(nil)
	leaveCtx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_ = c.cl.LeaveGroupContext(leaveCtx) // bounded: the broker may be unreachable
	cancel()
	c.cl.Close()
	c.dlq.Close()
	target.Close(c.conn)
	log.Info("%s consumer stopped", consumerName)
}

type consumer struct {
	cl, dlq  *kgo.Client
	pgcfg    *pgx.ConnConfig
	conn     *pgx.Conn       // nil after an error: reconnect before the next transaction
	stop     context.Context // done on SIGTERM
	topic    string
	dlqTopic string

	mu      sync.Mutex
	pending map[int32]*kgo.Record // applied, offset not yet committed (a commit failed)
}

func (c *consumer) stopped() bool { return c.stop.Err() != nil }

func (c *consumer) run() {
	var lastErr string
	var lastErrAt time.Time
	for !c.stopped() {
		pollCtx, cancel := c.stop, context.CancelFunc(func() {})
		if c.hasPending() {
			// A commit failed: come back soon to retry it even if no record arrives.
			pollCtx, cancel = context.WithTimeout(c.stop, time.Second)
		}
		fetches := c.cl.PollRecords(pollCtx, pollBatch)
		cancel()
		if c.stopped() {
			return // records polled but not handled are redelivered
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				return
			}
			msg := err.Error()
			if topic != "" { // "" is not about one partition (e.g. the group cannot be joined)
				msg = fmt.Sprintf("%s/%d: %v", topic, p, err)
			}
			if msg != lastErr || time.Since(lastErrAt) > 5*time.Second { // once per 5 s while it repeats
				log.Warn("consumer error: %s", msg)
				lastErr, lastErrAt = msg, time.Now()
			}
		})
		if c.hasPending() {
			c.commitPending(nil)
		}
		for _, rec := range fetches.Records() {
			if !c.handle(rec) {
				return // stopped before the record was applied or dead-lettered: commit nothing for it
			}
			crashpoint.Point("consumer.after_effect") // effect committed, offset not yet: redelivery window
			c.commit(rec)
			if c.stopped() {
				return // the record in hand is finished and committed
			}
		}
		c.cl.AllowRebalance()
	}
}

// commit commits rec's offset synchronously; on failure the offset stays pending and is
// retried (a later record's commit of the same partition covers it too).
func (c *consumer) commit(rec *kgo.Record) {
	c.mu.Lock()
	c.pending[rec.Partition] = rec
	c.mu.Unlock()
	c.commitPending(nil)
}

func (c *consumer) hasPending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) > 0
}

// commitPending commits the pending offsets of parts (all when nil). The lock is not
// held during the commit: a rebalance callback may need it meanwhile.
func (c *consumer) commitPending(parts []int32) {
	c.mu.Lock()
	var recs []*kgo.Record
	for p, rec := range c.pending {
		if parts == nil || contains(parts, p) {
			recs = append(recs, rec)
		}
	}
	c.mu.Unlock()
	if len(recs) == 0 {
		return
	}
	ctx, cancel := target.OpContext(c.stop, commitWait)
	defer cancel()
	if err := c.cl.CommitRecords(ctx, recs...); err != nil {
		log.Warn("offset commit failed, will retry: %v", err)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rec := range recs {
		if c.pending[rec.Partition] == rec {
			delete(c.pending, rec.Partition)
		}
	}
}

func (c *consumer) dropPending(parts []int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range parts {
		delete(c.pending, p)
	}
}

// handle applies or dead-letters one record; false when it stopped before either.
func (c *consumer) handle(rec *kgo.Record) bool {
	ev, err := decodeEvent(rec.Value)
	if err != nil { // malformed: retrying cannot help
		return c.deadLetter(rec, "undecodable: "+err.Error())
	}
	var last string
	infra := false
	for attempt := 1; attempt <= maxTries; attempt++ {
		err := c.apply(ev)
		if err == nil {
			return true
		}
		if isMessageFault(err) {
			// The event's own fault (data the database rejects): retried, then dead-lettered.
			last = reason(err)
			log.Warn("attempt %d/%d: %s", attempt, maxTries, last)
		} else {
			log.Warn("attempt %d/%d failed: %v", attempt, maxTries, err)
			c.dropConn()
			infra = true
			break
		}
		if target.Sleep(c.stop, time.Duration(attempt)*100*time.Millisecond) {
			return false
		}
	}
	if !infra {
		return c.deadLetter(rec, fmt.Sprintf("%s (event_id=%s seq=%s)", last, ev.Text("event_id"), ev.Text("seq")))
	}
	// Database trouble (connection lost, timeout) is not the message's fault: keep retrying rather
	// than dead-letter a good event; the partition stalls, which shows up as lag, not loss.
	for !c.stopped() {
		if target.Sleep(c.stop, time.Second) {
			return false
		}
		err := c.apply(ev)
		if err == nil {
			return true
		}
		if isMessageFault(err) {
			return c.deadLetter(rec, fmt.Sprintf("%s (event_id=%s seq=%s)", reason(err), ev.Text("event_id"), ev.Text("seq")))
		}
		log.Warn("database still failing: %v", err)
		c.dropConn()
	}
	return false
}

func (c *consumer) dropConn() {
	target.Close(c.conn)
	c.conn = nil
}

// apply writes the effect of one event and its processed-event record in one transaction.
func (c *consumer) apply(ev Event) error {
	if ev.Type() != actsOn {
		return nil // not this consumer's business
	}
	if c.conn == nil {
		conn, err := target.Connect(c.stop, c.pgcfg)
		if err != nil {
			return err
		}
		c.conn = conn
	}
	ctx, cancel := target.OpContext(c.stop, target.OpTimeout)
	defer cancel()
	return pgx.BeginFunc(ctx, c.conn, func(tx pgx.Tx) error {
		// Values go as text and Postgres casts them, so a bad value is the database's data error.
		tag, err := tx.Exec(ctx,
			"INSERT INTO processed_events (consumer, event_id, order_id, type, seq) "+
				"VALUES ($1, $2::text::uuid, $3::text::uuid, $4::text, $5::text::int) ON CONFLICT DO NOTHING",
			consumerName, ev.Param("event_id"), ev.Param("order_id"), ev.Param("type"), ev.Param("seq"))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			log.Info("duplicate delivery absorbed: event_id=%s order_id=%s", ev.Text("event_id"), ev.Text("order_id"))
			return nil
		}
		_, err = tx.Exec(ctx,
			"INSERT INTO "+effectTable+" (order_id, amount_cents, correlation_id, event_id) "+
				"VALUES ($1::text::uuid, $2::text::bigint, $3::text::uuid, $4::text::uuid)",
			ev.Param("order_id"), ev.Param("amount_cents"), ev.Param("correlation_id"), ev.Param("event_id"))
		return err
	})
}

// isMessageFault says the event's data is wrong (a data exception or an integrity
// violation, SQLSTATE classes 22 and 23), not that the database is unreachable.
func isMessageFault(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (strings.HasPrefix(pg.Code, "22") || strings.HasPrefix(pg.Code, "23"))
}

func reason(err error) string {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		kind := "DataError"
		if strings.HasPrefix(pg.Code, "23") {
			kind = "IntegrityError"
		}
		return fmt.Sprintf("rejected by the database: %s: %s (SQLSTATE %s)", kind, pg.Message, pg.Code)
	}
	return err.Error()
}

// deadLetter sends rec to the dead-letter topic and waits for the ack (its offset is
// committed right after). If the topic is unreachable it keeps trying (lag, not loss);
// a stop before the ack returns false and nothing is committed for rec.
func (c *consumer) deadLetter(rec *kgo.Record, why string) bool {
	if utf8.RuneCountInString(why) > 500 {
		why = string([]rune(why)[:500])
	}
	headers := []kgo.RecordHeader{
		{Key: "reason", Value: []byte(why)},
		{Key: "source_topic", Value: []byte(rec.Topic)},
		{Key: "source_partition", Value: []byte(strconv.Itoa(int(rec.Partition)))},
		{Key: "source_offset", Value: []byte(strconv.FormatInt(rec.Offset, 10))},
		{Key: "consumer", Value: []byte(consumerName)},
	}
	for !c.stopped() {
		ctx, cancel := target.OpContext(c.stop, dlqTimeout+5*time.Second)
		res := c.dlq.ProduceSync(ctx, &kgo.Record{Topic: c.dlqTopic, Key: rec.Key, Value: rec.Value, Headers: headers})
		cancel()
		if err := res.FirstErr(); err == nil {
			log.Error("dead-lettered offset %d/%d: %s", rec.Partition, rec.Offset, why)
			return true
		} else {
			log.Warn("dead-letter topic did not acknowledge (%v); trying again", err)
		}
		if target.Sleep(c.stop, time.Second) {
			return false
		}
	}
	return false
}

func partitionList(ps []int32) []int32 {
	out := append([]int32(nil), ps...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func contains(ps []int32, p int32) bool {
	for _, x := range ps {
		if x == p {
			return true
		}
	}
	return false
}
