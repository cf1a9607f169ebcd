<?php
// Sleeps ?ms=N milliseconds (default 1000), then answers with its pid.
usleep((int)($_GET['ms'] ?? 1000) * 1000);
echo getmypid(), "\n";
