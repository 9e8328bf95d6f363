package tailnet

import (
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// settleDelay is how long after the last node came up or went away the
// garbage is handed back to the system.
const settleDelay = time.Second

// memorySettler hands back the memory nodes starting and stopping leave,
// once they stop coming and going. A node's start (its network map, key
// exchange, netstack and WireGuard pools being filled) leaves tens of
// megabytes of garbage, and a node that stopped leaves all of its
// WireGuard message buffers: 64 KiB each, about 30 MiB a node. The runtime
// would return that memory only gradually, so an idle gatehouse would show
// it in its RSS for minutes. One burst of starts or stops costs two forced
// collections, a few milliseconds.
type memorySettler struct {
	mu sync.Mutex
	t  *time.Timer
}

// changed says a node came up or went away.
func (m *memorySettler) changed() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.t != nil {
		m.t.Reset(settleDelay)
		return
	}
	m.t = time.AfterFunc(settleDelay, releaseMemory)
}

// releaseMemory collects twice and returns the free memory to the system.
// wireguard-go keeps a device's message buffers in a sync.Pool, and
// whatever sits in a pool survives one collection (in its victim cache):
// the first collection moves a stopped node's buffers there, the second
// (FreeOSMemory's) frees them.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}
