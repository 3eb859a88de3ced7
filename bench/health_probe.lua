-- wrk script: one request every 50 ms, to sample latency without loading the machine.
function delay()
  return 50
end
