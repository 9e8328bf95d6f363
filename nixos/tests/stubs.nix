# Small stand-ins for the NixOS options services.gatehouse sets, so the
# module can be evaluated with nixpkgs' lib alone (no nixpkgs, no store).
# They are as loose as NixOS's own types where that does not matter, and as
# strict where the module's output is checked.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  strings = mkOption {
    type = types.listOf types.str;
    default = [ ];
  };
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
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
    };
    systemd.package = mkOption {
      type = types.package;
      default = {
        type = "derivation";
        name = "systemd";
        outPath = "${builtins.storeDir}/66666666666666666666666666666666-systemd";
      };
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
          # Lists add up across modules, as in NixOS (nixpkgs' cloudflared
          # module sets `after` of the tunnel's unit too).
          options.after = strings;
          options.wants = strings;
          options.wantedBy = strings;
          options.stopIfChanged = mkOption {
            type = types.bool;
            default = true;
          };
        }
      );
      default = { };
    };
    # The README's host runs Keycloak beside gatehouse; its options are not
    # what these tests check (keycloak's own module is nixpkgs'
    # nixos/modules/services/web-apps/keycloak.nix).
    services.keycloak = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
    # Set by nixpkgs' cloudflared module (evaluated when NIXPKGS_CLOUDFLARED
    # names it, see eval.nix).
    systemd.targets = mkOption {
      type = types.attrsOf (types.attrsOf types.anything);
      default = { };
    };
    meta = mkOption {
      type = types.attrsOf types.anything;
      default = { };
    };
  };
}
