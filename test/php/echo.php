<?php
// Echoes what the request carried, as JSON.
header('Content-Type: application/json');
$body = file_get_contents('php://input');
echo json_encode([
    'method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'query' => $_SERVER['QUERY_STRING'] ?? null,
    'get' => $_GET,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
    'body_length' => strlen($body),
    'body_md5' => md5($body),
    'script_filename' => $_SERVER['SCRIPT_FILENAME'] ?? null,
    'request_uri' => $_SERVER['REQUEST_URI'] ?? null,
    'pid' => getmypid(),
]);
