package tailnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"

	"tailscale.com/tsnet"

	"gatehouse/routes"
)

// Login joins every node the table needs that has no saved state yet, one
// at a time, printing the login URL for a person to open. It is for people
// without auth keys; with an auth key nodes join on their own.
func Login(ctx context.Context, cfg *routes.TailnetConfig, t *routes.Table, out io.Writer) error {
	quietLogs(cfg)
	// tsnet would wait for a control server that does not answer without
	// a word; a person at the terminal is told at once.
	if err := probeControl(ctx, cfg.ControlURL); err != nil {
		return fmt.Errorf("the control server %s does not answer (%w); check tailnet.control_url and this machine's network", controlName(cfg.ControlURL), err)
	}
	names := make([]string, 0)
	for name := range Wanted(cfg, t) {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		dir := nodeDir(cfg, name)
		if joined(cfg, name) {
			fmt.Fprintf(out, "%s: already joined\n", name)
			continue
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("node %s: state directory: %w", name, err)
		}
		s := &tsnet.Server{
			Dir: dir, Hostname: name, ControlURL: cfg.ControlURL, AdvertiseTags: cfg.Tags,
			UserLogf: func(format string, args ...any) { fmt.Fprintf(out, name+": "+format+"\n", args...) },
			Logf:     func(string, ...any) {},
		}
		fmt.Fprintf(out, "%s: joining the tailnet; open the URL below to approve it\n", name)
		_, err := s.Up(ctx)
		s.Close()
		if err != nil {
			return fmt.Errorf("node %s: %w", name, err)
		}
		fmt.Fprintf(out, "%s: joined\n", name)
	}
	return nil
}
