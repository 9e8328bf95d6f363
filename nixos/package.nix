# gatehouse, built from this checkout.
#
#   nix build .#gatehouse        (flake)
#   pkgs.callPackage ./nixos/package.nix { }
#
# go.mod's `go` line stays at the lowest version the dependencies allow, so
# the toolchain of buildGo126Module accepts it with GOTOOLCHAIN=local.
{
  lib,
  # Absent from nixpkgs without Go 1.26 (NixOS 26.05 and older): say so
  # instead of "called without required argument".
  buildGo126Module ? throw ''
    gatehouse needs Go 1.26 (buildGo126Module), which this nixpkgs does not have.
    Build it with nixos-unstable: in your flake, inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable"
    (with inputs.gatehouse.inputs.nixpkgs.follows = "nixpkgs"), or drop the follows line so
    gatehouse builds with its own nixpkgs input.
  '',
  # Stamped into `gatehouse version`; the flake passes the commit.
  version ? "0.0.0-dev",
}:

buildGo126Module {
  pname = "gatehouse";
  inherit version;

  # Only what the Go build reads. lib.sourceFilesBySuffices rather than
  # lib.fileset: it works with the older Nix that CI runs (Debian's nix-bin).
  # A local vendor/ (from `go mod vendor`) is never part of the source: the
  # modules come from the fixed-output derivation checked by vendorHash.
  src = lib.cleanSourceWith {
    name = "gatehouse-source";
    src = lib.sourceFilesBySuffices ../. [
      ".go"
      ".mod"
      ".sum"
    ];
    filter =
      path: type:
      !(
        type == "directory"
        && lib.elem (baseNameOf path) [
          ".git"
          "vendor"
        ]
      );
  };

  # One line, `nix hash path --sri` of `go mod vendor`'s output; .ci/nix-checks
  # recomputes it and fails when go.mod or go.sum moved on without it.
  vendorHash = lib.fileContents ./vendorHash.sri;

  subPackages = [ "." ];
  env.CGO_ENABLED = "0";
  ldflags = [
    "-s"
    "-w"
    "-X main.version=${version}"
  ];

  # The suite (real tsnet nodes against an in-process control server, -race)
  # runs in .ci/run; the Nix build only compiles.
  doCheck = false;

  meta = {
    description = "One gateway for every door of a home server: Cloudflare Tunnel and an embedded Tailscale node";
    mainProgram = "gatehouse";
    platforms = lib.platforms.linux;
  };
}
