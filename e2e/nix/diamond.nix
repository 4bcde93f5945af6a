# A diamond closure: app -> libA, libB -> libCommon (and busybox, the app's interpreter).
let
  inherit (import ./lib.nix) mk script rootEnv;
in rec {
  libCommon = mk "libcommon" ''echo "common" > $out/common.txt'';
  libA = mk "liba" ''echo "A+$(cat ${libCommon}/common.txt)" > $out/a.txt; echo ${libCommon} > $out/deps'';
  libB = mk "libb" ''echo "B+$(cat ${libCommon}/common.txt)" > $out/b.txt; echo ${libCommon} > $out/deps'';
  app = script "diamond-app" ''
    echo "diamond app: $(cat ${libA}/a.txt) $(cat ${libB}/b.txt) from $(cat ${libA}/deps)"
    echo "args: $*"
  '';
  root = rootEnv "diamond-root" [ { name = "app"; target = "${app}/bin/diamond-app"; } ];
}
