package crashpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// setup points the protocol at a fresh folder, forgets any arm seen before and counts kills.
func setup(t *testing.T) (dir string, kills *int) {
	t.Helper()
	dir = t.TempDir()
	t.Setenv("CHAOS_CRASHPOINTS_DIR", dir)
	t.Setenv("CHAOS_PROCESS", "consumer.payment")
	mu.Lock()
	st = state{}
	mu.Unlock()
	n := 0
	old := kill
	kill = func() { n++ }
	t.Cleanup(func() { kill = old })
	return dir, &n
}

// arm writes the arm file the way the harness does: write a temporary file, then rename.
func arm(t *testing.T, dir string, spec map[string]any) {
	t.Helper()
	raw, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "consumer.payment.arm.tmp")
	if err := os.WriteFile(tmp, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "consumer.payment.arm")); err != nil {
		t.Fatal(err)
	}
}

func readFired(t *testing.T, dir string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "consumer.payment.fired"))
	if err != nil {
		t.Fatalf("no fired file: %v", err)
	}
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("fired file is not JSON: %v", err)
	}
	return rec
}

func TestNotArmedIsANoOp(t *testing.T) {
	dir, kills := setup(t)
	for range 5 {
		Point("consumer.after_effect")
	}
	if *kills != 0 {
		t.Fatalf("killed %d times without an arm file", *kills)
	}
	if _, err := os.Stat(filepath.Join(dir, "consumer.payment.fired")); !os.IsNotExist(err) {
		t.Fatalf("fired file written without an arm: %v", err)
	}
}

func TestWithoutEnvironmentIsANoOp(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 1, "arm_id": "a1"})
	t.Setenv("CHAOS_PROCESS", "")
	Point("consumer.after_effect")
	if *kills != 0 {
		t.Fatal("killed without CHAOS_PROCESS")
	}
}

func TestDiesOnTheArmedPassageAndWritesEvidence(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 3, "arm_id": "a1"})
	Point("consumer.after_effect")
	Point("relay.after_publish") // another point does not count
	Point("consumer.after_effect")
	if *kills != 0 {
		t.Fatalf("killed before the 3rd passage")
	}
	if _, err := os.Stat(filepath.Join(dir, "consumer.payment.fired")); !os.IsNotExist(err) {
		t.Fatal("fired file written before the armed passage")
	}
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d after the 3rd passage, want 1", *kills)
	}
	rec := readFired(t, dir)
	if rec["point"] != "consumer.after_effect" || rec["passage"] != float64(3) || rec["arm_id"] != "a1" ||
		rec["pid"] != float64(os.Getpid()) {
		t.Fatalf("fired record = %v", rec)
	}
	if _, err := os.Stat(filepath.Join(dir, "consumer.payment.tmp")); !os.IsNotExist(err) {
		t.Fatal("temporary fired file left behind")
	}
	// Later passages of the same arm (in this process) do not fire again.
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d after a later passage, want 1", *kills)
	}
}

func TestPassageDefaultsToOne(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "arm_id": "a1"})
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d, want 1", *kills)
	}
	if rec := readFired(t, dir); rec["passage"] != float64(1) {
		t.Fatalf("fired record = %v", rec)
	}
}

func TestSpentArmDoesNotFireAfterARestart(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 1, "arm_id": "a1"})
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d, want 1", *kills)
	}
	// A restarted process starts with no state; the fired file marks the arm as spent.
	mu.Lock()
	st = state{}
	mu.Unlock()
	for range 3 {
		Point("consumer.after_effect")
	}
	if *kills != 1 {
		t.Fatalf("a spent arm fired again: kills = %d", *kills)
	}
}

func TestReArmingCountsAfresh(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 2, "arm_id": "a1"})
	Point("consumer.after_effect") // passage 1 of arm a1
	// A new arm (new file, new id) starts the count again from zero.
	time.Sleep(10 * time.Millisecond)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 2, "arm_id": "a2"})
	Point("consumer.after_effect")
	if *kills != 0 {
		t.Fatal("the passage count of the old arm carried over to the new one")
	}
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d, want 1", *kills)
	}
	if rec := readFired(t, dir); rec["arm_id"] != "a2" || rec["passage"] != float64(2) {
		t.Fatalf("fired record = %v", rec)
	}
}

func TestUnreadableArmIsNotArmed(t *testing.T) {
	dir, kills := setup(t)
	if err := os.WriteFile(filepath.Join(dir, "consumer.payment.arm"), []byte(`{"point": "consumer.aft`), 0o644); err != nil {
		t.Fatal(err)
	}
	Point("consumer.after_effect")
	if *kills != 0 {
		t.Fatal("a half-written arm fired")
	}
	// Once it is complete it is read (it changed), and counts from its first passage.
	time.Sleep(10 * time.Millisecond)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": 1, "arm_id": "a1"})
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d, want 1", *kills)
	}
}

func TestPassageAsDecimalString(t *testing.T) {
	dir, kills := setup(t)
	arm(t, dir, map[string]any{"point": "consumer.after_effect", "passage": "2", "arm_id": 7})
	Point("consumer.after_effect")
	Point("consumer.after_effect")
	if *kills != 1 {
		t.Fatalf("kills = %d, want 1", *kills)
	}
	if rec := readFired(t, dir); rec["arm_id"] != float64(7) {
		t.Fatalf("fired record = %v", rec)
	}
}

func TestRealKillEndsTheProcess(t *testing.T) {
	if os.Getenv("CRASHPOINT_TEST_CHILD") == "1" {
		Point("relay.after_publish")
		os.Exit(0) // not reached when the point fired
	}
	dir := t.TempDir()
	raw := []byte(`{"point": "relay.after_publish", "passage": 1, "arm_id": "x"}`)
	if err := os.WriteFile(filepath.Join(dir, "relay.arm"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess(exe, []string{exe, "-test.run=^TestRealKillEndsTheProcess$"}, &os.ProcAttr{
		Env:   append(os.Environ(), "CRASHPOINT_TEST_CHILD=1", "CHAOS_CRASHPOINTS_DIR="+dir, "CHAOS_PROCESS=relay"),
		Files: []*os.File{nil, os.Stdout, os.Stderr},
	})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if ps.Success() || ps.String() != "signal: killed" {
		t.Fatalf("child ended with %q, want signal: killed", ps.String())
	}
	rawFired, err := os.ReadFile(filepath.Join(dir, "relay.fired"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(rawFired, &rec); err != nil || rec["pid"] != float64(p.Pid) || rec["arm_id"] != "x" {
		t.Fatalf("fired record = %s (%v)", rawFired, err)
	}
}
