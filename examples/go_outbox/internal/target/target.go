// Package target is what the commands share: the harness's environment contract, a
// line logger on stdout, and Postgres connections that survive cut links.
package target

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Require returns the values of the named environment variables. A missing (or empty)
// one ends the process with exit code 2, naming it: targets are started by the harness.
func Require(names ...string) map[string]string {
	out := make(map[string]string, len(names))
	for _, name := range names {
		v := os.Getenv(name)
		if v == "" {
			Exit2("missing environment variable %s: targets are started by the harness", name)
		}
		out[name] = v
	}
	return out
}

// Exit2 prints a usage problem to stderr and exits with code 2.
func Exit2(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(2)
}

// Log writes one line per call straight to stdout (no buffering): the harness reads
// these lines, and its readiness check waits for one of them.
type Log struct {
	Name string
	mu   sync.Mutex
}

func (l *Log) line(level, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	msg = strings.ReplaceAll(msg, "\n", " ")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(os.Stdout, "%s %s %s %s\n", time.Now().Format("2006-01-02 15:04:05.000"), l.Name, level, msg)
}

func (l *Log) Info(format string, args ...any)  { l.line("INFO", format, args...) }
func (l *Log) Warn(format string, args ...any)  { l.line("WARNING", format, args...) }
func (l *Log) Error(format string, args ...any) { l.line("ERROR", format, args...) }

// Client settings that keep a black-holed link from hanging a target forever (the same
// values as the Python reference targets use).
const (
	connectTimeout   = 3 * time.Second
	statementTimeout = "5000" // ms, server side
	keepAliveIdle    = 5 * time.Second
	keepAliveIntvl   = 2 * time.Second
	keepAliveCount   = 2
	// OpTimeout bounds every database round trip on the client side as well: a statement
	// timeout cannot help when the link drops the server's answer. pgx closes the
	// connection when the context expires, and the caller reconnects.
	OpTimeout = 10 * time.Second
)

// PGConfig parses a libpq keyword/value DSN (or URL) and adds the chaos settings:
// connect timeout 3 s, statement_timeout 5 s, TCP keepalives.
func PGConfig(dsn string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	ChaosSettings(cfg)
	return cfg, nil
}

// ChaosSettings adds the chaos settings to a parsed config (a pool's ConnConfig too): connect
// timeout 3 s, statement_timeout 5 s, TCP keepalives.
func ChaosSettings(cfg *pgx.ConnConfig) {
	// libpq's keepalive keywords are not server settings; pgx would send them as such.
	for _, k := range []string{"keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout"} {
		delete(cfg.RuntimeParams, k)
	}
	cfg.RuntimeParams["statement_timeout"] = statementTimeout
	cfg.ConnectTimeout = connectTimeout
	dialer := &net.Dialer{
		Timeout: connectTimeout,
		KeepAliveConfig: net.KeepAliveConfig{
			Enable: true, Idle: keepAliveIdle, Interval: keepAliveIntvl, Count: keepAliveCount,
		},
	}
	cfg.DialFunc = dialer.DialContext // shared by the fallbacks (sslmode=prefer tries TLS, then plain)
}

// StopGrace is how long an operation in hand may still run after SIGTERM: enough to
// finish a healthy one, short enough to exit within the harness's stop grace when a link
// is black-holed.
const StopGrace = 2 * time.Second

// OpContext bounds one operation: d, or StopGrace after stop is done, whichever ends first.
func OpContext(stop context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	release := context.AfterFunc(stop, func() { time.AfterFunc(StopGrace, cancel) })
	return ctx, func() { release(); cancel() }
}

// Connect opens one connection with cfg, bounded by the connect timeout (and by OpContext).
func Connect(stop context.Context, cfg *pgx.ConnConfig) (*pgx.Conn, error) {
	ctx, cancel := OpContext(stop, OpTimeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// Close closes conn without waiting on a dead link.
func Close(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// Sleep waits d or until ctx is done; it reports whether ctx is done.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// KafkaRetryBackoff is the clients' retry backoff: 100 ms doubling up to 1 s, jittered
// (franz-go's default grows to 5 s). A failed retry is when franz-go checks record
// timeouts, and the first retry after a heal is when a client recovers: both stay
// within about a second of the event.
func KafkaRetryBackoff(fails int) time.Duration {
	d := time.Second
	if fails < 5 {
		d = 100 * time.Millisecond << max(fails-1, 0)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
