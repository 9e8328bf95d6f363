//go:build race

package ratelimit

// The race detector makes each store operation many times slower, so the
// flood test uses fewer clients under -race; the benchmark runs the full
// million.
const raceEnabled = true
