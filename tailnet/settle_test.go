package tailnet

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// A stopped node's WireGuard message buffers sit in a sync.Pool nothing
// refers to any more; releaseMemory must free them, and one collection does not:
// a pool's contents survive it in the victim cache.
func TestReleaseMemoryFreesWhatAStoppedNodesPoolHeld(t *testing.T) {
	freed := make(chan struct{})
	func() {
		pool := &sync.Pool{}
		buf := new([64 << 10]byte)
		runtime.AddCleanup(buf, func(ch chan struct{}) { close(ch) }, freed)
		pool.Put(buf)
	}()
	releaseMemory()
	select {
	case <-freed:
	case <-time.After(30 * time.Second):
		t.Fatal("a buffer left in a dropped sync.Pool is still live after releaseMemory: the stopped node's memory stays with the process")
	}
}
