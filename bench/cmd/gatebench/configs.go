package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// The bench routes.hcl: three Cloudflare-door routes to the same backend
// handler (each on its own backend port, so connections can be counted
// per route):
//
//	app      access "app", rate limiting on (per client 1e6/s, never hit)
//	nolimit  the same route without any limit
//	family   access "family" behind sign-in (the benchOP, signin/oidctest), same limit as app
//
//	tls      the LAN door only (HTTPS, lan != nil), same limit as app
//
// No tailnet block: the tailnet door stays off (the tailnet scenario
// runs gatehouse processes of its own, tailnet.go).
func gatehouseConfig(dir string, listen, metrics, app, nolimit, family int, lan *lanSetup, op *benchOP) (string, error) {
	limit := `  limit {
    rate       = "1000000/s"
    burst      = 1000000
    concurrent = 100000
  }
`
	cfg := configHead(listen, metrics) + fmt.Sprintf(`
route "app" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "app"
    access = "app"
  }
%s}

route "nolimit" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "nolimit"
    access = "app"
  }
}
`, app, limit, nolimit)
	if lan != nil {
		if err := os.WriteFile(filepath.Join(dir, "lan-dns-token"), []byte("never used: the certificate is stored\n"), 0o600); err != nil {
			return "", err
		}
		cfg += fmt.Sprintf(`
# The LAN door with the bench's certificate stored in its certmagic
# storage beforehand (tls.go): valid for 90 days, so certmagic serves it
# and never asks the CA, which is a refused loopback port.
lan {
  listen         = ["127.0.0.1:%d"]
  networks       = ["127.0.0.0/8"]
  state_dir      = %q
  acme_ca        = %q
  dns_token_file = "lan-dns-token"
}

route "tls" {
  backend = "http://127.0.0.1:%d"
  lan {
    host   = "tls"
    access = "app"
  }
%s}
`, lan.listen, lan.stateDir, lanCA, lan.backend, limit)
	}
	if op != nil {
		if err := os.WriteFile(filepath.Join(dir, "client-secret"), []byte(op.Secret+"\n"), 0o600); err != nil {
			return "", err
		}
		cfg += fmt.Sprintf(`
# Sessions are re-checked with the provider every refresh_interval; a
# browser stores the renewed cookie, wrk cannot, so the bench keeps the
# check out of the measured minutes.
oidc {
  issuer             = %q
  client_id          = %q
  client_secret_file = "client-secret"
  refresh_interval   = "1h"
}

route "family" {
  backend = "http://127.0.0.1:%d"
  cloudflare {
    host   = "family"
    access = "family"
  }
%s}
`, op.Issuer, op.ClientID, family, limit)
	}
	path := filepath.Join(dir, "routes.hcl")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// caddyConfig is Caddy as an equivalent reverse proxy: plain HTTP, no
// admin endpoint, no automatic HTTPS, responses flushed at once; and, when
// tlsPort is set, the same on HTTPS with the bench's certificate (HTTP/1.1
// and HTTP/2, as gatehouse's LAN door; no HTTP/3 listener).
func caddyConfig(dir string, listen, backend, tlsPort, tlsBackend int, cert *benchCert) (string, error) {
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1 h2
	}
}

http://:%d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:%d {
		flush_interval -1
	}
}
`, listen, backend)
	if cert != nil {
		cfg += fmt.Sprintf(`
https://%s:%d {
	bind 127.0.0.1
	tls %s %s
	reverse_proxy 127.0.0.1:%d {
		flush_interval -1
	}
}
`, tlsHost, tlsPort, cert.certFile, cert.keyFile, tlsBackend)
	}
	path := filepath.Join(dir, "Caddyfile")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// nginxSpec is one nginx process of the bench.
type nginxSpec struct {
	name     string // its file names in dir: NAME.conf, NAME.pid, NAME-tmp/
	listen   int
	backend  int
	workers  string
	buffered bool
	// tlsPort, if set, adds an HTTPS server with cert to its own backend
	// port tlsBackend.
	tlsPort, tlsBackend int
	cert                *benchCert
}

// nginxConfig is nginx as an equivalent reverse proxy: upstream
// keep-alive, no body limit, WebSocket upgrades. Keep-alive connections
// are not retired after 1000 requests (nginx's default for both sides),
// as neither Caddy nor gatehouse retires them.
//
// Unbuffered (proxy_buffering off, proxy_request_buffering off) streams
// both ways like the other two proxies. Buffered keeps nginx's defaults
// there, the way its users run it as a reverse proxy: responses read
// into proxy_buffers (and a temporary file past them), request bodies
// read whole before they are sent on.
func nginxConfig(dir string, n nginxSpec) (string, error) {
	tmp := filepath.Join(dir, n.name+"-tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	buffering := `            proxy_buffering off;
            proxy_request_buffering off;
`
	if n.buffered {
		buffering = `            proxy_buffering on;
            proxy_request_buffering on;
`
	}
	location := func(upstream string) string {
		return fmt.Sprintf(`        location / {
            proxy_pass http://%s;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
%s            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
`, upstream, buffering)
	}
	upstream := func(name string, port int) string {
		return fmt.Sprintf(`    upstream %s {
        server 127.0.0.1:%d;
        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
`, name, port)
	}
	cfg := fmt.Sprintf(`# gatebench: generated, thrown away after the run.
daemon off;
master_process on;
worker_processes %s;
pid %s;
error_log %s warn;

events {
    worker_connections 4096;
}

http {
    access_log off;
    client_body_temp_path %[4]s/body;
    proxy_temp_path %[4]s/proxy;
    fastcgi_temp_path %[4]s/fastcgi;
    uwsgi_temp_path %[4]s/uwsgi;
    scgi_temp_path %[4]s/scgi;

%s
    map $http_upgrade $connection_upgrade {
        default upgrade;
        ''      '';
    }

    server {
        listen 127.0.0.1:%d;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
        client_max_body_size 0;

%s    }
`, n.workers, filepath.Join(dir, n.name+".pid"), filepath.Join(dir, n.name+"-error.log"), tmp,
		upstream("backend", n.backend), n.listen, location("backend"))
	if n.cert != nil {
		cfg += fmt.Sprintf(`
%s
    server {
        listen 127.0.0.1:%d ssl http2;
        server_name %s;
        ssl_certificate %s;
        ssl_certificate_key %s;
        ssl_protocols TLSv1.2 TLSv1.3;
        keepalive_requests 1000000;
        keepalive_timeout 120s;
        client_max_body_size 0;

%s    }
`, upstream("backend_tls", n.tlsBackend), n.tlsPort, tlsHost, n.cert.certFile, n.cert.keyFile, location("backend_tls"))
	}
	cfg += "}\n"
	path := filepath.Join(dir, n.name+".conf")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// configHead opens every routes.hcl gatebench writes: the domain, the
// Cloudflare door and the metrics listener (with /debug/pprof/).
func configHead(listen, metrics int) string {
	return fmt.Sprintf(`# gatebench: generated, thrown away after the run.
domain = "bench.test"

cloudflare {
  listen = "127.0.0.1:%d"
}

metrics {
  listen = "127.0.0.1:%d"
}
`, listen, metrics)
}
