package orders

// The service's statements, exactly targets.order_service.place_sql(True), transition_sql(True)
// and its SELECT, with libpq's $n placeholders (golden_test.go checks them against Python's).
// Each write is one statement: a data-modifying CTE writes the order row and inserts the
// outbox row only from the row it wrote, so no row written (a duplicate order, a concurrent
// change) means no event, and the command tag's row count says which happened.
const (
	// PlaceSQL params: order_id, customer, amount_cents, correlation_id, event_id, seq, type, payload.
	PlaceSQL = "WITH written AS (INSERT INTO orders (order_id, customer, amount_cents, status, version, correlation_id) " +
		"VALUES ($1, $2, $3, 'created', 1, $4) ON CONFLICT (order_id) DO NOTHING RETURNING order_id) " +
		"INSERT INTO outbox (event_id, order_id, seq, type, payload) " +
		"SELECT $5::uuid, order_id, $6::int, $7::text, $8::text FROM written"
	// TransitionSQL params: to, correlation_id, order_id, from, version, event_id, seq, type, payload.
	TransitionSQL = "WITH written AS (UPDATE orders SET status = $1, version = version + 1, correlation_id = $2, " +
		"updated_at = clock_timestamp() WHERE order_id = $3 AND status = $4 AND version = $5 RETURNING order_id) " +
		"INSERT INTO outbox (event_id, order_id, seq, type, payload) " +
		"SELECT $6::uuid, order_id, $7::int, $8::text, $9::text FROM written"
	// SelectSQL params: order_id. Columns: customer, amount_cents, version, status.
	SelectSQL = "SELECT customer, amount_cents, version, status FROM orders WHERE order_id = $1"
)
