<?php
// exit(N): php-fpm still reports appStatus 0 (PROTOCOL.md item 13).
echo "exiting\n";
exit((int)($_GET['code'] ?? 3));
