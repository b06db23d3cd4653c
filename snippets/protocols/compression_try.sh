RECIPE_API=${RECIPE_API:-http://127.0.0.1:4002}
for accept in 'gzip, deflate, br, zstd' 'gzip, br;q=0.9' 'gzip;q=0.5, identity' \
    'identity' 'foo' 'gzip;q=abc' 'identity;q=0'; do
  printf '%-24s -> ' "$accept"
  curl -s -o /dev/null -H "Accept-Encoding: $accept" \
    -w '%{http_code} [%header{content-encoding}] %{size_download} bytes\n' \
    "$RECIPE_API/recipes?count=100"
done
# --compressed asks for every encoding curl knows, and decompresses the answer
curl -s --compressed "$RECIPE_API/recipes/stream?count=2"
