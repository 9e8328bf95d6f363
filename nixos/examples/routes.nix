# The reference home server's route table (routes.hcl at the top of the
# repository) written for services.gatehouse.routes. The module adds the
# door address, the tailnet node settings and the credential paths.
{
  domain = "example.com";

  cloudflare.trusted_proxies = [
    "127.0.0.1/32"
    "::1/128"
  ];

  tailnet.admins = [ "admin@example.com" ];

  # Rate limits for every route, per client; routes and paths tighten them.
  limit = {
    rate = "50/s"; # Immich and Jellyfin load dozens of thumbnails at once
    burst = 200;
    concurrent = 64; # requests one client may have running at once
    max_clients = 100000; # clients remembered; the oldest idle ones go first
  };

  # Prometheus metrics and the ban list, on loopback only.
  metrics.listen = "127.0.0.1:9750";

  # Shared with the family
  route.immich = {
    backend = "http://127.0.0.1:2283";
    max_body = "100MB"; # the Cloudflare tunnel's own request limit
    tailnet.access = "members";
    cloudflare = {
      host = "photos";
      access = "family";
    };
    lan = {
      access = "family"; # at home: the same sign-in, no tunnel limit
      max_body = "20GiB";
    };
    preset = "immich"; # the phone app's API and shared links (docs/presets.md)
    # Password guessing: ten failures in 15 minutes shut the client out.
    path."/api/auth/login" = {
      limit = {
        rate = "10/min";
        burst = 5;
      };
      ban = {
        failures = 10;
        window = "15m";
        ban_time = "1h";
      };
    };
  };
  route.nextcloud = {
    backend = "http://127.0.0.1:8080";
    tailnet.access = "members";
    cloudflare = {
      host = "files";
      access = "family";
    };
    lan.access = "family";
    preset = "nextcloud"; # WebDAV, OCS and login flow v2 for sync clients
  };
  route.vaultwarden = {
    backend = "http://127.0.0.1:8000";
    tailnet.access = "members";
    cloudflare = {
      host = "passwords";
      access = "app"; # Bitwarden clients; the vault has its own login
    };
    lan.access = "app";
    path."/admin" = {
      cloudflare = "closed"; # never on the internet
      lan = "closed"; # nor on the LAN
    };
    # Where Bitwarden clients log in.
    path."/identity/connect/token" = {
      limit = {
        rate = "10/min";
        burst = 5;
      };
      ban = {
        failures = 10;
        window = "15m";
        ban_time = "1h";
        statuses = [
          400
          401
        ]; # Vaultwarden answers a wrong password with 400
      };
    };
  };
  route.jellyfin = {
    backend = "http://127.0.0.1:8096";
    tailnet.access = "members";
    cloudflare = {
      host = "watch";
      access = "family";
    };
    lan.access = "family";
    preset = "jellyfin"; # TV apps, Swiftfin, Kodi; admin API closed (docs/apps.md)
  };
  route.jellyseerr = {
    backend = "http://127.0.0.1:5055";
    tailnet.access = "admin";
    cloudflare = {
      host = "request";
      access = "family";
    };
    lan.access = "family";
  };
  route.audiobookshelf = {
    backend = "http://127.0.0.1:13378";
    tailnet.access = "members";
    cloudflare = {
      host = "audiobooks";
      access = "family";
    };
    lan.access = "family";
    preset = "audiobookshelf"; # the phone app; shares and feeds are opt-in presets
  };
  route.navidrome = {
    backend = "http://127.0.0.1:4533";
    tailnet.access = "members";
    cloudflare = {
      host = "music";
      access = "family";
      identity_headers = [ "Remote-User" ]; # Navidrome's trusted-header sign-in
    };
    lan = {
      access = "family";
      identity_headers = [ "Remote-User" ];
    };
    preset = "navidrome"; # Subsonic clients
  };

  # Admin only: on the tailnet for its admins; at home behind family sign-in
  # restricted to the Keycloak group "admins" (docs/lan.md).
  route.radarr = {
    backend = "http://127.0.0.1:7878";
    tailnet.access = "admin";
    lan = {
      host = "radarr";
      access = "family";
      groups = [ "admins" ];
    };
  };
  route.sonarr = {
    backend = "http://127.0.0.1:8989";
    tailnet.access = "admin";
    lan = {
      host = "sonarr";
      access = "family";
      groups = [ "admins" ];
    };
  };
  route.bazarr = {
    backend = "http://127.0.0.1:6767";
    tailnet.access = "admin";
    lan = {
      host = "bazarr";
      access = "family";
      groups = [ "admins" ];
    };
  };
  route.prowlarr = {
    backend = "http://127.0.0.1:9696";
    tailnet.access = "admin";
    lan = {
      host = "prowlarr";
      access = "family";
      groups = [ "admins" ];
    };
  };
  route.deluge = {
    backend = "http://127.0.0.1:8112";
    tailnet.access = "admin";
    lan = {
      host = "deluge";
      access = "family";
      groups = [ "admins" ];
    };
  };
  route.radicale = {
    backend = "http://127.0.0.1:5232";
    tailnet.access = "members";
    lan = {
      host = "calendar";
      access = "family";
      identity_headers = [ "X-Remote-User" ];
    };
  };
  route.microbin = {
    backend = "http://127.0.0.1:8084";
    tailnet.access = "admin";
    lan = {
      host = "microbin";
      access = "family";
      groups = [ "admins" ];
    };
  };

  # The identity provider: only Keycloak's public paths through Cloudflare.
  route.keycloak = {
    backend = "http://127.0.0.1:8180";
    tailnet.access = "admin";
    cloudflare = {
      host = "auth";
      access = "closed";
    };
    lan.access = "closed";
    # The household realm, not master (docs/apps.md), on both public doors.
    path."/realms/home/" = {
      cloudflare = "app";
      lan = "app";
    };
    path."/resources/" = {
      cloudflare = "app";
      lan = "app";
    };
    path."/robots.txt" = {
      cloudflare = "app";
      lan = "app";
    };
  };
}
