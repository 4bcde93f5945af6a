#!/bin/sh
# The "bundler": concatenates the modules listed in package.json in order, strips comments and
# blank lines, names the bundle by its content hash and writes index.html pointing at it.
set -eu
out=$1
mkdir -p "$out/assets"
version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json)
modules=$(sed -n 's/^ *"bundle": *\[\(.*\)\].*/\1/p' package.json | tr -d '",')
for m in $modules; do
  sed -e 's://.*$::' -e '/^[[:space:]]*$/d' "$m"
done > "$out/bundle.js"
hash=$(sha256sum "$out/bundle.js" | cut -c1-12)
mv "$out/bundle.js" "$out/assets/app.$hash.js"
sed -e 's/[[:space:]]\{2,\}/ /g' src/style.css > "$out/assets/style.css"
sed -e "s/@BUNDLE@/assets\/app.$hash.js/" -e "s/@VERSION@/$version/" src/index.html > "$out/index.html"
built=$(date -u -d "@${SOURCE_DATE_EPOCH:-0}" +%Y-%m-%dT%H:%M:%SZ)
printf '{"name":"dashboard","version":"%s","bundle":"assets/app.%s.js","built":"%s"}\n' \
  "$version" "$hash" "$built" > "$out/build-info.json"
echo "bundled $(echo $modules | wc -w) modules into assets/app.$hash.js"
