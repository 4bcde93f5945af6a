# A stand-in for Attic's server, atticd (https://github.com/zhaofengli/attic), built with Nix.
#
# With nixpkgs this file would be just
#   { pkgs ? import <nixpkgs> { } }: { atticd = pkgs.attic-server; root = pkgs.buildEnv { ... }; }
# This example must build offline without nixpkgs, so atticd is a small busybox shell script
# that behaves like the real server at startup: it takes `--mode`, reads its configuration
# file (ATTIC_SERVER_CONFIG, default /etc/attic/server.toml) and the token signing secret
# (ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64), and reports what it found. Needs /bin/busybox from
# a static busybox (Debian: busybox-static) on the machine that runs Nix.
let
  bb = builtins.path {
    name = "busybox-static";
    path = /bin;
    filter = path: type: baseNameOf path == "busybox";
  };
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = "${bb}/busybox";
    args = [ "sh" "-c" "mkdir -p $out; ${script}" ];
  };
in rec {
  atticd = mk "atticd-standin-0.1.0" ''
    mkdir -p $out/bin
    cat > $out/bin/atticd <<'ATTICD_EOF'
    #!${bb}/busybox sh
    mode=monolithic
    config=''${ATTIC_SERVER_CONFIG:-/etc/attic/server.toml}
    while [ $# -gt 0 ]; do
      case $1 in
        --mode) mode=$2; shift 2 ;;
        --mode=*) mode=''${1#--mode=}; shift ;;
        -f|--config) config=$2; shift 2 ;;
        *) echo "atticd: unexpected argument '$1'" >&2; exit 2 ;;
      esac
    done
    case $mode in
      monolithic|api-server|garbage-collector|db-migrations|check-config) ;;
      *) echo "atticd: unknown mode '$mode'" >&2; exit 2 ;;
    esac
    [ -r "$config" ] || { echo "atticd: cannot read the configuration file $config" >&2; exit 1; }
    [ -n "$ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64" ] ||
      { echo "atticd: ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64 is not set" >&2; exit 1; }
    secret_bytes=$(printf %s "$ATTIC_SERVER_TOKEN_HS256_SECRET_BASE64" | base64 -d | wc -c)
    [ "$secret_bytes" -ge 32 ] || { echo "atticd: the HS256 secret must be at least 32 bytes" >&2; exit 1; }
    listen=$(sed -n 's/^listen *= *"\(.*\)"/\1/p' "$config")
    database=$(sed -n 's/^url *= *"\(.*\)"/\1/p' "$config")
    echo "atticd: mode $mode"
    echo "atticd: configuration $config: listen $listen, database $database"
    echo "atticd: token signing secret: HS256, $secret_bytes bytes"
    echo "atticd: running as uid $(id -u)"
    ATTICD_EOF
    chmod 0555 $out/bin/atticd
  '';

  # The image's root: /bin/atticd -> the store path's program.
  root = mk "atticd-root" ''
    mkdir -p $out/bin $out/etc/attic
    ln -s ${atticd}/bin/atticd $out/bin/atticd
  '';
}
