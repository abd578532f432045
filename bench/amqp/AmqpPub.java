// SPDX-License-Identifier: Apache-2.0
// AmqpPub - the baseline of bench/bench_sinks.sh: a minimal publisher on
// RabbitMQ's official Java client with the settings of our RabbitMQ sink:
// publisher confirms with at most WINDOW unconfirmed messages, persistent,
// mandatory, to a durable topic exchange, with the properties the sink
// sets (content type, app id, message id, timestamp, four headers).  Prints "<msgs> <seconds>" once
// every message is confirmed.
//   java -cp 'JARS/*' AmqpPub.java URI EXCHANGE ROUTINGKEY COUNT SIZE WINDOW
import com.rabbitmq.client.*;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.Semaphore;

public class AmqpPub {
    public static void main(String[] a) throws Exception {
        ConnectionFactory f = new ConnectionFactory();
        f.setUri(a[0]);
        String ex = a[1], rk = a[2];
        int count = Integer.parseInt(a[3]), size = Integer.parseInt(a[4]);
        int window = Integer.parseInt(a[5]);
        byte[] body = new byte[size];
        java.util.Arrays.fill(body, (byte) 'x');
        try (Connection c = f.newConnection(); Channel ch = c.createChannel()) {
            ch.exchangeDeclare(ex, "topic", true);
            ch.confirmSelect();
            Semaphore room = new Semaphore(window);
            ConcurrentSkipListSet<Long> out = new ConcurrentSkipListSet<>();
            ch.addConfirmListener(new ConfirmListener() {
                void done(long tag, boolean multiple) {
                    if (multiple) {
                        var head = out.headSet(tag, true);
                        int n = head.size();
                        head.clear();
                        room.release(n);
                    } else if (out.remove(tag)) {
                        room.release();
                    }
                }
                public void handleAck(long tag, boolean m) { done(tag, m); }
                public void handleNack(long tag, boolean m) {
                    System.err.println("nack " + tag);
                    System.exit(1);
                }
            });
            ch.addReturnListener(r -> { System.err.println("unroutable"); System.exit(1); });
            long t0 = System.nanoTime();
            java.util.Date now = new java.util.Date();
            for (int i = 0; i < count; i++) {
                String pos = "mysql-bin.000001:" + (4096 + i) + ":0";
                java.util.Map<String, Object> h = new java.util.HashMap<>();
                h.put("op", "insert");
                h.put("db", "sbench");
                h.put("table", "orders");
                h.put("position", pos);
                AMQP.BasicProperties p = new AMQP.BasicProperties.Builder()
                    .deliveryMode(2).contentType("application/json").appId("bench")
                    .messageId(pos).timestamp(now).headers(h).build();
                room.acquire();
                out.add(ch.getNextPublishSeqNo());
                ch.basicPublish(ex, rk, true, p, body);
            }
            room.acquire(window); // every message confirmed
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.println(count + " " + s);
        }
    }
}
