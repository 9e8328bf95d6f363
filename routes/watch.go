package routes

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes to one file. It watches the directory, not the
// file, because editors and configuration tools replace a file by renaming
// a new one over it, which ends a watch on the old inode.
type Watcher struct {
	file string
	abs  string
	w    *fsnotify.Watcher
}

// NewWatcher starts watching file. Changes from this moment on are seen,
// so a caller that loads the file after NewWatcher returns misses none.
func NewWatcher(file string) (*Watcher, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", file, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", file, err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		w.Close()
		return nil, fmt.Errorf("watching %s: %w", filepath.Dir(abs), err)
	}
	return &Watcher{file: file, abs: abs, w: w}, nil
}

// Run calls changed, debounced, whenever the file is written, created or
// replaced, until ctx ends (nil) or the watch fails (the error). It closes
// the watcher when it returns.
func (wt *Watcher) Run(ctx context.Context, debounce time.Duration, changed func()) error {
	defer wt.w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-wt.w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != wt.abs || ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-wt.w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watching %s: %w", wt.file, err)
		case <-timer.C:
			changed()
		}
	}
}

// Watch is NewWatcher followed by Run.
func Watch(ctx context.Context, file string, debounce time.Duration, changed func()) error {
	wt, err := NewWatcher(file)
	if err != nil {
		return err
	}
	return wt.Run(ctx, debounce, changed)
}
