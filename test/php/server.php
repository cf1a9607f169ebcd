<?php
// Dumps $_SERVER (the CGI params as php-fpm saw them) as JSON.
header('Content-Type: application/json');
echo json_encode($_SERVER);
