package tailnet

import (
	"runtime/debug"
	"sync"
	"time"
)

// settleDelay is how long after the last node came up the start-up's
// garbage is handed back to the system.
const settleDelay = time.Second

// memorySettler hands back the memory node start-up used once nodes stop
// coming up. A node's start (its network map, key exchange, netstack and
// WireGuard pools being filled) leaves tens of megabytes of garbage; the
// runtime would return it only gradually, so an idle gatehouse would show
// it in its RSS for minutes. One forced collection per burst of starts
// costs a few milliseconds.
type memorySettler struct {
	mu sync.Mutex
	t  *time.Timer
}

func (m *memorySettler) nodeUp() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.t != nil {
		m.t.Reset(settleDelay)
		return
	}
	m.t = time.AfterFunc(settleDelay, debug.FreeOSMemory)
}
