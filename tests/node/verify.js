// Verify one delivery as a Node.js receiver does, with the npm `standardwebhooks` package.
// stdin: {"secret": "whsec_…", "headers": {…as received…}, "body": "…raw body…"}.
// Prints the verified event's id and type; exits 1 when verification fails.
const { Webhook } = require("standardwebhooks");

let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    const event = new Webhook(secret).verify(body, headers);
    console.log(JSON.stringify({ event_id: event.event_id, type: event.type }));
  } catch (err) {
    console.error(`not verified: ${err.message}`);
    process.exit(1);
  }
});
