WEB_API=${WEB_API:-http://127.0.0.1:3000}
curl -s "$WEB_API/" | python -m json.tool --indent 2
