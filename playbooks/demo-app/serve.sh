#!/bin/sh
# Count the starts in the volume (it outlives the container), write the page, serve it.
starts=$(( $(cat /www/starts 2>/dev/null || echo 0) + 1 ))
echo "$starts" > /www/starts
echo "$GREETING from $(hostname), start $starts" > /www/index.html
exec httpd -f -p 80 -h /www
