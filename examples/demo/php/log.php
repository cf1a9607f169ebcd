<?php
// Logs to FastCGI STDERR while answering normally.
header('X-Worker: ' . getmypid());
error_log('job ' . ($_GET['job'] ?? '?') . ' logged a line');
echo "logged\n";
