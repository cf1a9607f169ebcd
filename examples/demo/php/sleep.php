<?php
// Waits ?ms milliseconds (default 20), like a script blocked on I/O.
header('X-Worker: ' . getmypid());
usleep((int)($_GET['ms'] ?? 20) * 1000);
echo "slept\n";
