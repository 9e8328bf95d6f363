# A stand-in for nixpkgs' nixos/modules/services/networking/cloudflared.nix:
# the options services.gatehouse reads and writes, with the same types.
# eval.nix uses nixpkgs' own module instead when NIXPKGS_CLOUDFLARED names
# that file.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  nullOrPath = mkOption {
    type = types.nullOr types.path;
    default = null;
  };
in
{
  options = {
    services.cloudflared.enable = mkOption {
      type = types.bool;
      default = false;
    };
    services.cloudflared.certificateFile = mkOption {
      type = types.nullOr types.path;
      default = null;
    };
    services.cloudflared.tunnels = mkOption {
      type = types.attrsOf (
        types.submodule {
          freeformType = types.attrsOf types.anything; # default, originRequest, …
          options.credentialsFile = nullOrPath;
          options.tokenFile = nullOrPath;
          options.certificateFile = nullOrPath;
          options.token = mkOption {
            type = types.nullOr types.str;
            default = null;
          };
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
