# A closure of 1 + 1 + 240 store paths (app, busybox, generated packages), to exercise
# max_layers. Package i depends on package i/2 (a binary tree) and has i*64 bytes of data,
# so popularity and size differ from path to path.
let
  inherit (import ./lib.nix) mk script;
  n = 240;
  pkg = i: mk "pkg-${toString i}" (''
    head -c ${toString (i * 64)} /dev/zero | tr '\0' 'x' > $out/data
  '' + (if i > 0 then "echo ${pkgs.${toString (i / 2)}} > $out/parent\n" else ""));
  pkgs = builtins.listToAttrs (builtins.genList (i: { name = toString i; value = pkg i; }) n);
in rec {
  app = script "many-app" ''
    for p in ${builtins.concatStringsSep " " (map toString (builtins.attrValues pkgs))}; do
      test -f $p/data || { echo "missing $p"; exit 1; }
    done
    echo "many app: ${toString n} packages present"
  '';
}
