package signin

import (
	"hash/maphash"
	"sync"
)

// sessionCache remembers what session cookies decrypted to, so a signed-in
// family member's every request does not pay for AEAD opening and JSON
// decoding. The key is the exact sealed cookie value: a hit is what opening
// that same value again would give. Revocation and expiry are still judged
// on every request. The cache belongs to one SignIn, and so to one key
// ring: a new key file means a new SignIn and an empty cache.
type sessionCache struct {
	seed   maphash.Seed
	shards [16]sessionShard
}

type sessionShard struct {
	mu sync.Mutex
	// Two generations: when cur fills, it becomes old and a new cur
	// starts, so memory stays bounded and recently used entries survive.
	cur, old map[string]cachedSession
}

type cachedSession struct {
	sess   *session
	reseal bool
	legacy *tokens // a version 1 cookie's tokens, for memory
}

// sessionCacheShardSize bounds each generation of each shard: at most
// 2×16×512 cookies are remembered.
const sessionCacheShardSize = 512

func newSessionCache() *sessionCache {
	return &sessionCache{seed: maphash.MakeSeed()}
}

func (c *sessionCache) shard(val string) *sessionShard {
	return &c.shards[maphash.String(c.seed, val)%uint64(len(c.shards))]
}

func (c *sessionCache) get(val string) (cachedSession, bool) {
	sh := c.shard(val)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.cur[val]; ok {
		return e, true
	}
	if e, ok := sh.old[val]; ok {
		sh.putLocked(val, e)
		return e, true
	}
	return cachedSession{}, false
}

func (c *sessionCache) put(val string, e cachedSession) {
	sh := c.shard(val)
	sh.mu.Lock()
	sh.putLocked(val, e)
	sh.mu.Unlock()
}

func (sh *sessionShard) putLocked(val string, e cachedSession) {
	if sh.cur == nil {
		sh.cur = make(map[string]cachedSession)
	}
	if len(sh.cur) >= sessionCacheShardSize {
		sh.old, sh.cur = sh.cur, make(map[string]cachedSession)
	}
	sh.cur[val] = e
}
