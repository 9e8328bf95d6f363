//go:build !linux

package sdnotify

// monotonicUsec is only needed where systemd runs.
func monotonicUsec() (uint64, error) { return 0, ErrNoMonotonicClock }
