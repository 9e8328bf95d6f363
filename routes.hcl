# routes.hcl — the route table of gatehouse for the reference home server.
#
# Every service is a `route`. A route names its backend on this machine and,
# for each door, the hostname it answers on and who may pass:
#
#   admin    a tailnet identity listed in tailnet.admins
#   members  anyone signed in to the tailnet
#   family   signed in through the household Keycloak (OIDC)
#   app      no gateway sign-in; the app's own login protects it
#            (family and app are the levels of the cloudflare and lan doors;
#            admin and members need a tailnet identity)
#   closed   not reachable (useful in path rules)
#
# A door a route does not name is closed: the request gets the same 404 as
# an unknown host, so nobody learns which services exist.
#
# Check an edit with `gatehouse check -config routes.hcl`; a running gateway
# picks up a good file by itself and keeps the old table if the new one is bad.

# Bare hostnames on the cloudflare door ("photos") live under this domain.
domain = "example.com"

# The loopback listener cloudflared forwards to. Point every ingress rule of
# the tunnel at http://127.0.0.1:8750. Only cloudflared on this machine is
# trusted to say who the client is (CF-Connecting-IP).
cloudflare {
  listen          = "127.0.0.1:8750"
  trusted_proxies = ["127.0.0.1/32", "::1/128"]
}

# The LAN door: the same public hostnames as the cloudflare door, served at
# home over HTTPS with a certificate from Let's Encrypt (ACME DNS-01 through
# Cloudflare's DNS API), so one bookmark works at home and away. Point the
# names at this address in the home resolver (`gatehouse dns` prints the
# records; docs/lan.md). Only clients on the private networks are accepted.
lan {
  listen          = ["192.168.1.10:443"]
  redirect_listen = ["192.168.1.10:80"] # plain HTTP only redirects to HTTPS
  state_dir       = "/var/lib/gatehouse/lan"
  acme_email      = "admin@example.com"
  # An API token with Zone.DNS:Edit on the zone (docs/lan.md).
  dns_token_file = "/run/credentials/gatehouse.service/lan-dns-token"
}

# The embedded Tailscale node. Admins are tailnet login names or tags.
tailnet {
  hostname  = "gatehouse"
  state_dir = "/var/lib/gatehouse/tailnet"
  admins    = ["admin@example.com"]
}

# Rate limits for every route, per client (a signed-in user or tailnet
# device when known, else the client address; IPv6 grouped by /64). Routes
# and paths below tighten them. Over the limit: 429 with Retry-After.
limit {
  rate        = "50/s" # Immich and Jellyfin load dozens of thumbnails at once
  burst       = 200
  concurrent  = 64      # requests one client may have running at once
  max_clients = 100000  # clients remembered; the oldest idle ones go first
}

# Prometheus metrics and the list of banned clients, on loopback only:
# never reachable through a door.
metrics {
  listen = "127.0.0.1:9750"
}

# Family sign-in through Keycloak is configured in an `oidc` block:
#
#   oidc {
#     issuer             = "https://auth.example.com/realms/home"
#     client_id          = "gatehouse"
#     client_secret_file = "/run/credentials/gatehouse.service/oidc-client-secret"
#     cookie_domain      = "example.com"  # one sign-in for every family host
#     cookie_key_file    = "/var/lib/gatehouse/oidc/cookie.keys"
#   }
#
# (docs/signin.md has the Keycloak client, step by step.) Until it is
# present, family routes answer 503 "sign-in unavailable": they fail closed
# rather than open (acknowledge = ["family-without-sign-in"] quiets that).

# --- Shared with the family -------------------------------------------------

route "immich" {
  backend  = "http://127.0.0.1:2283"
  max_body = "100MB" # the Cloudflare tunnel's own request limit

  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "photos"
    access = "family"
  }
  lan {
    access = "family"
    max_body = "20GiB" # no tunnel limit at home
  }
  # The Immich phone app cannot follow a sign-in redirect; it talks to the
  # API with its own token. The preset opens /api/, /.well-known/immich and
  # shared links, and closes the first-admin sign-up (docs/apps.md);
  # `gatehouse routes` lists the paths.
  preset = "immich"
  # Password guessing: a few tries a minute, and ten failures in 15 minutes
  # shut the client out of Immich for an hour. Only this path counts:
  # shared albums answer bursts of 401s that are not attacks.
  path "/api/auth/login" {
    limit {
      rate  = "10/min"
      burst = 5
    }
    ban {
      failures = 10
      window   = "15m"
      ban_time = "1h"
    }
  }
}

route "nextcloud" {
  backend = "http://127.0.0.1:8080"

  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "files"
    access = "family"
  }
  lan {
    access = "family"
  }
  # Desktop and phone sync clients use WebDAV, OCS and login flow v2 with
  # app passwords; the browser part of the login stays behind sign-in.
  preset = "nextcloud"
}

route "vaultwarden" {
  backend = "http://127.0.0.1:8000"

  tailnet {
    access = "members"
  }
  # Bitwarden clients cannot sign in through the gateway, and the vault is
  # end-to-end encrypted behind its own login.
  cloudflare {
    host   = "passwords"
    access = "app"
  }
  lan {
    access = "app"
  }
  # The admin panel is never exposed to the internet, nor to the LAN.
  path "/admin" {
    cloudflare = "closed"
    lan        = "closed"
  }
  # Where Bitwarden clients log in.
  path "/identity/connect/token" {
    limit {
      rate  = "10/min"
      burst = 5
    }
    ban {
      failures = 10
      window   = "15m"
      ban_time = "1h"
      statuses = [400, 401] # Vaultwarden answers a wrong password with 400
    }
  }
}

route "jellyfin" {
  backend = "http://127.0.0.1:8096"

  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "watch"
    access = "family"
  }
  lan {
    access = "family"
  }
  # TV apps, Swiftfin and Kodi authenticate against Jellyfin's own API; the
  # web client (/web/) stays behind family sign-in, and the admin's API
  # (restart, logs, settings, setup, plugins…) is closed here: use it on the
  # tailnet. The Android phone app is the web client in a WebView and
  # cannot sign in through this door: docs/apps.md (Jellyfin) has the
  # choice between the tailnet and `access = "app"`.
  preset = "jellyfin"
}

route "jellyseerr" {
  backend = "http://127.0.0.1:5055"

  tailnet {
    access = "admin"
  }
  cloudflare {
    host   = "request"
    access = "family"
  }
  lan {
    access = "family"
  }
}

route "audiobookshelf" {
  backend = "http://127.0.0.1:13378"

  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "audiobooks"
    access = "family"
  }
  lan {
    access = "family"
  }
  # The phone app logs in against the API itself. Shared links and podcast
  # feeds are opt-in: preset = ["audiobookshelf", "audiobookshelf-share",
  # "audiobookshelf-feed"] (docs/apps.md).
  preset = "audiobookshelf"
}

route "navidrome" {
  backend = "http://127.0.0.1:4533"

  tailnet {
    access = "members"
  }
  cloudflare {
    host   = "music"
    access = "family"
    # Signs the family member in to Navidrome when it trusts the header
    # (ND_EXTAUTH_TRUSTEDSOURCES=127.0.0.1/32; docs/apps.md: Navidrome).
    identity_headers = ["Remote-User"]
  }
  lan {
    access           = "family"
    identity_headers = ["Remote-User"]
  }
  # Subsonic clients (phone music players) carry their own credentials.
  preset = "navidrome"
}

# --- Admin only ---------------------------------------------------------------
#
# On the tailnet for tailnet admins; at home on the LAN door behind family
# sign-in restricted to the Keycloak group "admins" (add the groups claim:
# docs/signin.md). Never through Cloudflare.

route "radarr" {
  backend = "http://127.0.0.1:7878"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "radarr"
    access = "family"
    groups = ["admins"]
  }
}

route "sonarr" {
  backend = "http://127.0.0.1:8989"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "sonarr"
    access = "family"
    groups = ["admins"]
  }
}

route "bazarr" {
  backend = "http://127.0.0.1:6767"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "bazarr"
    access = "family"
    groups = ["admins"]
  }
}

route "prowlarr" {
  backend = "http://127.0.0.1:9696"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "prowlarr"
    access = "family"
    groups = ["admins"]
  }
}

route "deluge" {
  backend = "http://127.0.0.1:8112"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "deluge"
    access = "family"
    groups = ["admins"]
  }
}

route "radicale" {
  backend = "http://127.0.0.1:5232"
  tailnet {
    access = "members"
  }
  # At home, in the browser, as the signed-in family member; CalDAV apps
  # send a device token (docs/signin.md) or use the tailnet.
  lan {
    host             = "calendar"
    access           = "family"
    identity_headers = ["X-Remote-User"]
  }
}

# Optional: remove this route if you do not run MicroBin.
route "microbin" {
  backend = "http://127.0.0.1:8084"
  tailnet {
    access = "admin"
  }
  lan {
    host   = "microbin"
    access = "family"
    groups = ["admins"]
  }
}

# --- The identity provider --------------------------------------------------

# Family browsers must reach Keycloak's login pages through Cloudflare, but
# nothing else: of the paths Keycloak's reverse-proxy guide lists as public
# (keycloak/keycloak docs/guides/server/reverseproxy.adoc) only the
# household realm's — not /realms/master, where Keycloak's own admins sign
# in — and the login pages' assets. The admin console and the master realm
# stay on the tailnet (docs/apps.md: Keycloak). `gatehouse check` warns if
# the master realm opens here.
route "keycloak" {
  backend = "http://127.0.0.1:8180"

  tailnet {
    access = "admin"
  }
  cloudflare {
    host   = "auth"
    access = "closed"
  }
  # At home, the same household realm, so family sign-in works on the LAN
  # door without leaving the house.
  lan {
    access = "closed"
  }
  path "/realms/home/" {
    cloudflare = "app"
    lan        = "app"
  }
  path "/resources/" {
    cloudflare = "app"
    lan        = "app"
  }
  path "/robots.txt" {
    cloudflare = "app"
    lan        = "app"
  }
}
