# Two versions of one application whose closures differ only in the application itself:
# a shared runtime (busybox, 30 libraries of varied size and popularity) and the app on top.
let
  inherit (import ./lib.nix) mk script;
  lib = i: deps: mk "runtime-lib-${toString i}" (''
    head -c ${toString ((i + 1) * 4096)} /dev/zero | tr '\0' 'r' > $out/lib.so
  '' + builtins.concatStringsSep "\n" (map (d: "echo ${d} >> $out/deps") deps));
  libs = builtins.genList (i: lib i (if i < 10 then [ ] else [ (builtins.elemAt libs (i - 10)) (builtins.elemAt libs (i / 3)) ])) 30;
  app = version: script "versioned-app" ''
    echo "app ${version}; runtime: ${builtins.concatStringsSep " " (map toString libs)}" | head -c 40; echo
  '';
in {
  v1 = app "1.0.0";
  v2 = app "2.0.0";
}
