<?php
// Sleeps ?ms=N milliseconds (default 1000), then answers with its pid. With ?log=TEXT it first
// logs TEXT to FastCGI STDERR and flushes, so the client has it before the wait.
if (isset($_GET['log'])) {
    error_log($_GET['log']);
    flush();
}
usleep((int)($_GET['ms'] ?? 1000) * 1000);
echo getmypid(), "\n";
