package routes

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch calls changed, debounced, whenever file is written, created or
// replaced. It watches the directory, not the file, because editors and
// configuration tools replace a file by renaming a new one over it, which
// ends a watch on the old inode. It returns when ctx ends.
func Watch(ctx context.Context, file string, debounce time.Duration, changed func()) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return fmt.Errorf("watching %s: %w", file, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", file, err)
	}
	defer w.Close()
	if err := w.Add(filepath.Dir(abs)); err != nil {
		return fmt.Errorf("watching %s: %w", filepath.Dir(abs), err)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if filepath.Clean(ev.Name) != abs || ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(debounce)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			return fmt.Errorf("watching %s: %w", file, err)
		case <-timer.C:
			changed()
		}
	}
}
