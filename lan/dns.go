package lan

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/libdns/cloudflare"
	"github.com/libdns/libdns"
)

// DNSProvider is what certmagic's DNS-01 solver needs from a DNS API: to
// add the challenge's TXT record and to take it away again.
type DNSProvider interface {
	libdns.RecordAppender
	libdns.RecordDeleter
}

// cloudflareDNS answers DNS-01 through Cloudflare's DNS API, reading the API
// token from its file on every use: a token fixed on disk is picked up by
// the next retry, and the token is never kept in the config or a log.
type cloudflareDNS struct {
	tokenFile string
	client    cloudflare.HTTPClient // nil: libdns/cloudflare's default
}

func (c *cloudflareDNS) provider() (*cloudflare.Provider, error) {
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the DNS API token file %s (lan.dns_token_file): %w", c.tokenFile, err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return nil, fmt.Errorf("the DNS API token file %s (lan.dns_token_file) is empty", c.tokenFile)
	}
	return &cloudflare.Provider{APIToken: token, HTTPClient: c.client}, nil
}

func (c *cloudflareDNS) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	out, err := p.AppendRecords(ctx, zone, recs)
	if err != nil {
		return nil, fmt.Errorf("cloudflare DNS API (token from %s): adding the challenge record in zone %s: %w", c.tokenFile, zone, err)
	}
	return out, nil
}

func (c *cloudflareDNS) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	p, err := c.provider()
	if err != nil {
		return nil, err
	}
	out, err := p.DeleteRecords(ctx, zone, recs)
	if err != nil {
		return nil, fmt.Errorf("cloudflare DNS API (token from %s): removing the challenge record in zone %s: %w", c.tokenFile, zone, err)
	}
	return out, nil
}
