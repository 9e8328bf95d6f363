# Small stand-ins for the NixOS options services.gatehouse sets, so the
# module can be evaluated with nixpkgs' lib alone (no nixpkgs, no store).
# They are as loose as NixOS's own types where that does not matter, and as
# strict where the module's output is checked.
{ lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options = {
    assertions = mkOption {
      type = types.listOf (
        types.submodule {
          options.assertion = mkOption { type = types.bool; };
          options.message = mkOption { type = types.str; };
        }
      );
      default = [ ];
    };
    warnings = mkOption {
      type = types.listOf types.str;
      default = [ ];
    };
    environment.etc = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.source = mkOption { type = types.path; };
        }
      );
      default = { };
    };
    # As in nixpkgs' services/networking/firewall.nix.
    networking.firewall.interfaces = mkOption {
      type = types.attrsOf (
        types.submodule {
          options.allowedTCPPorts = mkOption {
            type = types.listOf types.port;
            default = [ ];
          };
        }
      );
      default = { };
    };
    systemd.services = mkOption {
      type = types.attrsOf (
        types.submodule {
          freeformType = types.attrsOf types.anything;
          options.serviceConfig = mkOption {
            type = types.attrsOf types.anything;
            default = { };
          };
          options.reloadTriggers = mkOption {
            type = types.listOf types.path;
            default = [ ];
          };
          options.stopIfChanged = mkOption {
            type = types.bool;
            default = true;
          };
        }
      );
      default = { };
    };
    # As in nixpkgs' services/networking/cloudflared.nix.
    services.cloudflared.enable = mkOption {
      type = types.bool;
      default = false;
    };
    services.cloudflared.tunnels = mkOption {
      type = types.attrsOf (
        types.submodule {
          freeformType = types.attrsOf types.anything; # credentialsFile, default, …
          options.ingress = mkOption {
            type = types.attrsOf (types.either types.str (types.attrsOf types.anything));
            default = { };
          };
        }
      );
      default = { };
    };
  };
}
