<?php
// Fails with an uncaught exception: php-fpm answers 500 and the message goes to STDERR.
header('X-Worker: ' . getmypid());
throw new RuntimeException('job ' . ($_GET['job'] ?? '?') . ' failed on purpose');
