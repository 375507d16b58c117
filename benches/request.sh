# The canonical request as wrk sends it (sourced by load.sh and
# inserver.sh): 9 headers besides host, 8 cookies, 5 query parameters.
headers=(-H 'user-agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0'
  -H 'accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'
  -H 'accept-language: en-US,en;q=0.5' -H 'x-request-id: 4bf92f3577b34da6a3ce929d0e0e4736'
  -H 'x-forwarded-for: 203.0.113.7' -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  -H 'content-type: application/json' -H 'x-user-id: user-42'
  -H 'cookie: session=9f8e7d6c5b4a; theme=dark; lang=en; cart=42; ab=b; tz=UTC; consent=yes; seen=1')
query='?page=2&sort=price&lang=en&ref=home&utm_source=mail'
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
