// Package crashpoint implements chaos-harness's named crash points for Go targets:
// the process dies *exactly here* when the harness armed this point.
//
//	// ...publish and wait for the acks...
//	crashpoint.Point("relay.after_publish") // the harness may kill us between publish and mark-sent
//	// ...mark the rows sent...
//
// The protocol is language-neutral and needs nothing but the standard library (this
// file is the Go copy of harness/sdk/crashpoints.py; copy it into your module as is):
//
//	CHAOS_CRASHPOINTS_DIR  a folder of the run, set by the harness for every target process
//	CHAOS_PROCESS          this process's name, e.g. "relay" or "consumer.payment"
//	<dir>/<process>.arm    JSON {"point": NAME, "passage": N, "arm_id": ID[, "event_type": T]}, written atomically
//	                       (write + rename) by the harness
//	<dir>/<process>.fired  JSON {"point", "passage", "arm_id", "pid"}, written by the process
//	                       just before it SIGKILLs itself: the harness's evidence that the
//	                       crash happened at the point and not somewhere else
//
// Each call stats the arm file (one syscall; nothing is read unless it changed). When
// the armed point is passed for the N-th time since arming, the process writes the
// fired file and kills itself with SIGKILL: no deferred calls, no flush, no offset
// commit, exactly like a power cut to the process. An arm whose fired file exists
// (same arm_id) is spent, so a restarted process does not die again at the same point.
package crashpoint

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"
)

// state is what this process knows about the current arm file.
type state struct {
	seen    bool        // an arm file was read (info/mtime/size describe it)
	info    os.FileInfo // identity of the arm file read last (os.SameFile: device and inode)
	mtime   time.Time
	size    int64
	armed   bool   // the arm names a point and is not spent
	point   string // the armed point
	passage int64  // die on this passage through the point (1 = the first)
	armID   any    // the arm's id, as JSON decoded it
	evType  string // count only passages about this event type ("" = every passage)
	count   int64  // passages through the armed point since this arm was read
}

var (
	mu sync.Mutex
	st state

	// kill ends the process without running anything else; tests replace it.
	kill = func() {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill() // SIGKILL on Unix
		}
		select {} // never return to the caller: the process is dying
	}
)

// Point dies here if the harness armed name for this process and this is the armed passage.
func Point(name string) { PointFor(name, "") }

// PointFor is Point for a passage about a record of eventType: an arm for the N-th record of one
// type ("event_type" in the arm file) counts only those passages.
func PointFor(name string, eventType string) {
	folder, process := os.Getenv("CHAOS_CRASHPOINTS_DIR"), os.Getenv("CHAOS_PROCESS")
	if folder == "" || process == "" {
		return
	}
	armPath := filepath.Join(folder, process+".arm")
	firedPath := filepath.Join(folder, process+".fired")
	info, err := os.Stat(armPath)
	if err != nil {
		return // not armed
	}
	mu.Lock()
	defer mu.Unlock()
	if !st.seen || !os.SameFile(st.info, info) || !st.mtime.Equal(info.ModTime()) || st.size != info.Size() {
		raw, err := os.ReadFile(armPath)
		if err != nil {
			return // just removed: not armed for this passage
		}
		var spec map[string]any
		if json.Unmarshal(raw, &spec) != nil {
			return // half-written: not armed for this passage
		}
		point, isString := spec["point"].(string)
		passage, ok := toInt(spec["passage"], 1)
		armed := isString && ok
		if armed {
			var fired map[string]any
			if raw, err := os.ReadFile(firedPath); err == nil && json.Unmarshal(raw, &fired) == nil {
				if reflect.DeepEqual(fired["arm_id"], spec["arm_id"]) {
					armed = false // spent: this arm already fired (before a restart)
				}
			}
		}
		evType, _ := spec["event_type"].(string)
		st = state{seen: true, info: info, mtime: info.ModTime(), size: info.Size(),
			armed: armed, point: point, passage: passage, armID: spec["arm_id"], evType: evType}
	}
	if !st.armed || st.point != name || (st.evType != "" && st.evType != eventType) {
		return
	}
	st.count++
	if st.count != st.passage {
		return
	}
	record, err := json.Marshal(struct {
		Point   string `json:"point"`
		Passage int64  `json:"passage"`
		ArmID   any    `json:"arm_id"`
		PID     int    `json:"pid"`
	}{name, st.passage, st.armID, os.Getpid()})
	if err == nil {
		tmp := strings.TrimSuffix(firedPath, ".fired") + ".tmp"
		if os.WriteFile(tmp, record, 0o644) == nil {
			_ = os.Rename(tmp, firedPath)
		}
	}
	kill()
}

// toInt reads a JSON passage: a number or a decimal string; absent means def.
func toInt(v any, def int64) (int64, bool) {
	switch x := v.(type) {
	case nil:
		return def, true
	case float64:
		if x != float64(int64(x)) {
			return 0, false
		}
		return int64(x), true
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}
