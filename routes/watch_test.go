package routes

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatch: the callback fires when the file is written in place and when
// a new file is renamed over it (how editors and config tools save), and not
// for other files in the same directory.
//
// The 10s waits are hang guards, not timing assertions. The quiet windows
// for "did not fire" can only let a bug slip through on a very slow machine,
// never fail a correct Watch.
func TestWatch(t *testing.T) {
	const debounce = 20 * time.Millisecond
	const quiet = 15 * debounce
	dir := t.TempDir()
	file := filepath.Join(dir, "routes.hcl")
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(file, "v1")

	fired := make(chan struct{}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, file, debounce, func() {
			select {
			case fired <- struct{}{}:
			default:
			}
		})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Watch returned %v after cancel, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Watch did not return after its context ended")
		}
	}()

	// waitFired fails the test if the callback has not fired within 10s.
	waitFired := func(what string) {
		t.Helper()
		select {
		case <-fired:
		case err := <-done:
			t.Fatalf("%s: Watch returned early: %v", what, err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the callback never fired", what)
		}
	}
	// settle drains callbacks until none has come for a quiet window.
	settle := func() {
		for {
			select {
			case <-fired:
			case <-time.After(quiet):
				return
			}
		}
	}

	// (a) Write in place. Watch has no ready signal, so keep writing until
	// the watch is in place and the callback fires.
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; ; n++ {
		write(file, "in place "+string(rune('a'+n%26)))
		select {
		case <-fired:
		case <-time.After(quiet):
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatal("write in place: the callback never fired")
		}
		break
	}
	settle()

	// Other files in the same directory, written in place or replaced by a
	// rename, do not fire it; nor does creating the temp file the next step
	// renames over routes.hcl.
	other := filepath.Join(dir, "other.hcl")
	write(other, "x")
	write(other+".tmp", "y")
	if err := os.Rename(other+".tmp", other); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".routes.hcl.tmp")
	write(tmp, "v2 via rename")
	select {
	case <-fired:
		t.Fatal("the callback fired for a change to another file")
	case <-time.After(quiet):
	}

	// (b) Replace by rename.
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
	waitFired("rename over the file")
	settle()

	// The watch survives the rename: the new inode is watched too.
	write(file, "v3")
	waitFired("write in place after a rename")
}

func TestWatchMissingDirectory(t *testing.T) {
	err := Watch(context.Background(), filepath.Join(t.TempDir(), "nope", "routes.hcl"), time.Millisecond, func() {})
	if err == nil {
		t.Fatal("Watch of a file in a missing directory returned nil")
	}
}
