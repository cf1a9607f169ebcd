<?php
// A fatal error: php-fpm answers 500 and logs the message to STDERR.
echo "before\n";
undefined_function_xyz();
