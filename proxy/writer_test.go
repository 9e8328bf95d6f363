package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// deadlineRecorder is a ResponseWriter that records the write deadlines
// set on it through http.ResponseController.
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	set []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.set = append(d.set, t)
	return nil
}

// The stall deadline covers the response's writes and net/http's last
// write after the handler, and is set once for a short answer: a body
// written at once and the finish right after it share one setting.
func TestStallDeadlineSetOncePerShortAnswer(t *testing.T) {
	const stall = time.Minute
	answer := func(hijacked bool) (*loggingWriter, *deadlineRecorder) {
		rec := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		return &loggingWriter{ResponseWriter: rec, stall: stall, hijacked: hijacked}, rec
	}
	w, rec := answer(false)
	before := time.Now()
	w.Write(make([]byte, 1024))
	w.finish()
	if len(rec.set) != 1 {
		t.Fatalf("a short answer set the write deadline %d times, want 1", len(rec.set))
	}
	if ahead := rec.set[0].Sub(before); ahead < stall {
		t.Errorf("the deadline is %v ahead, want the whole stall period %v", ahead, stall)
	}

	// An answer without a body still gets the deadline for net/http's write.
	w, rec = answer(false)
	w.WriteHeader(http.StatusNoContent)
	w.finish()
	if len(rec.set) != 1 {
		t.Errorf("a body-less answer set the write deadline %d times, want 1", len(rec.set))
	}

	// A finish long after the last write pushes the deadline on again.
	w, rec = answer(false)
	w.Write([]byte("x"))
	w.deadline = w.deadline.Add(-stall / 2) // as if half the period had passed
	before = time.Now()
	w.finish()
	if len(rec.set) != 2 || rec.set[1].Sub(before) < stall {
		t.Errorf("a finish half a stall period after the last write did not push the deadline a whole period on: %v", rec.set)
	}

	// A hijacked connection is no longer the server's: no deadline.
	w, rec = answer(true)
	w.finish()
	if len(rec.set) != 0 {
		t.Errorf("finish set a deadline on a hijacked connection: %v", rec.set)
	}
}
