import Directory
import Foundation
import Logging
import MailMessage
import Metrics
import NIOPosix
import SMTP
import ServiceLifecycle
import SharedTree

/// Works the shared spool: any node claims due entries (a lock file per entry), delivers local
/// recipients into their mailboxes and remote ones through `OutboundDelivery` (MX or smarthost,
/// DKIM-signed for our domains), retries temporary failures with exponential backoff and
/// bounces (RFC 3464 DSN) what failed for good or outlived svcpkgQueueLifetime. A node that
/// dies holding a claim loses it after the stale timeout and another node's runner finishes
/// the entry.
struct QueueRunner: Service {
    static let pollInterval: Duration = .seconds(1)
    static let batchSize = 100
    /// RFC 5321 §6.3: a message with this many Received fields is in a loop.
    static let maxHops = 50
    /// Longest wait between attempts, whatever svcpkgQueueRetryInterval says.
    static let maxRetryDelay: TimeInterval = 3600

    let runtime: NodeRuntime
    let mail: MailServices
    let outbound: OutboundDelivery
    let signer: DKIMSigningService
    let fileThreads: NIOThreadPool
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // A draining or maintenance node takes no new work; its claims expire to others.
                if runtime.effectiveState == .active {
                    await runOnce()
                }
                try? await Task.sleep(for: Self.pollInterval)
            }
        }
    }

    @discardableResult
    func runOnce(now: Date = Date()) async -> Int {
        let queue = QueueStore(layout: mail.layout, node: mail.nodeName, lockOptions: mail.lockOptions)
        let due: [QueueEnvelope]
        do {
            due = try await fileThreads.runIfActive { try queue.due(now: now) }
        } catch {
            logger.error("cannot read the queue", metadata: ["error": "\(error)"])
            return 0
        }
        var handled = 0
        for envelope in due.prefix(Self.batchSize) {
            guard let claim = try? await fileThreads.runIfActive({ try queue.claim(envelope.id) }) else { continue }
            await work(claim)
            handled += 1
        }
        return handled
    }

    /// One recipient's fate in this attempt.
    struct Outcome {
        var status: QueueRecipient.Status
        var text: String
        /// For a DSN when the status is failed.
        var failure: DeliveryStatusNotification.FailedRecipient?
    }

    private func work(_ claim: QueueClaim) async {
        var claim = claim
        let id = claim.envelope.id
        var logger = self.logger
        logger[metadataKey: "queueID"] = "\(id)"
        let message: [UInt8]
        do {
            let current = claim
            message = try await fileThreads.runIfActive { try current.message() }
        } catch {
            logger.error("queue entry without readable message", metadata: ["error": "\(error)"])
            _ = try? claim.release()
            return
        }
        let config = runtime.snapshot.nodeConfig
        let envelope = claim.envelope
        var outcomes: [Int: Outcome] = [:]
        var remote: [(index: Int, address: String)] = []
        let looping = Self.hopCount(message) > Self.maxHops
        for (index, recipient) in envelope.recipients.enumerated() where recipient.status == .pending {
            if looping {
                outcomes[index] = Self.failed(recipient.address, "5.4.6", "x-svcpkg; routing loop: more than \(Self.maxHops) Received fields")
                continue
            }
            let target: DeliveryTarget?
            do {
                target = try await mail.queueTarget(recipient.address)
            } catch let refusal as MailServices.RecipientRefusal {
                let text = refusal.reply.encoded().trimmingCharacters(in: .whitespacesAndNewlines)
                outcomes[index] = refusal.reply.code >= 500
                    ? Self.failed(recipient.address, refusal.reply.enhanced ?? "5.0.0", "x-svcpkg; \(text)")
                    : Outcome(status: .pending, text: text)
                continue
            } catch {
                outcomes[index] = Outcome(status: .pending, text: "451 4.3.0 lookup failed: \(error)")
                continue
            }
            switch target {
            case nil:
                outcomes[index] = Self.failed(recipient.address, "5.1.1", "x-svcpkg; 550 5.1.1 no such user here")
            case .queue(let address):
                remote.append((index, address))
            case .mailbox(let address, let quota):
                outcomes[index] = await deliverLocally(message, to: address, quota: quota)
            }
        }
        if !remote.isEmpty {
            let domains = (try? await mail.activeDomains()) ?? [:]
            let signer = self.signer
            let signed = (try? await fileThreads.runIfActive { signer.sign(message, domains: domains) }) ?? message
            let results = await outbound.deliver(
                sender: envelope.sender, recipients: remote.map(\.address), message: signed,
                requiresSMTPUTF8: envelope.requiresSMTPUTF8 ?? false, eightBit: envelope.eightBit ?? false, config: config)
            for (index, address) in remote {
                switch results[address] ?? .temporary("x-svcpkg; not attempted") {
                case .delivered(let text):
                    outcomes[index] = Outcome(status: .delivered, text: text)
                case .temporary(let text):
                    outcomes[index] = Outcome(status: .pending, text: text)
                case .permanent(let status, let diagnostic, let remoteMTA):
                    outcomes[index] = Outcome(
                        status: .failed, text: diagnostic,
                        failure: .init(address: address, status: status, diagnostic: diagnostic, remoteMTA: remoteMTA))
                }
            }
        }
        // Past the lifetime, what is still pending fails (RFC 3464 status 4.4.7: delivery time expired).
        let now = Date()
        if now.timeIntervalSince(envelope.receivedAt) >= TimeInterval(config.queueLifetime) {
            for (index, outcome) in outcomes where outcome.status == .pending {
                let address = envelope.recipients[index].address
                outcomes[index] = Outcome(
                    status: .failed, text: "expired: \(outcome.text)",
                    failure: .init(address: address, status: "4.4.7", diagnostic: outcome.text, remoteMTA: nil))
            }
        }
        for outcome in outcomes.values {
            Counter(label: "svcpkg_queue_deliveries_total", dimensions: [("result", outcome.status.rawValue)]).increment()
        }
        // The DSN is queued before the failures are recorded: a crash in between can repeat a
        // DSN, never lose one.
        let failures = outcomes.values.compactMap(\.failure)
        var bounced = false
        if !failures.isEmpty {
            bounced = await queueBounce(for: envelope, failures: failures, message: message, config: config, logger: logger)
            if !bounced && DeliveryStatusNotification.isBounceable(sender: envelope.sender) {
                // The DSN could not be stored: try the whole entry again later rather than lose it.
                _ = try? claim.release()
                return
            }
        }
        let recorded = outcomes
        do {
            try claim.record { envelope in
                for (index, outcome) in recorded {
                    envelope.recipients[index].status = outcome.status
                    envelope.recipients[index].lastResult = outcome.text
                }
            }
            let current = claim.envelope
            if !current.pendingRecipients.isEmpty {
                // Never wait past the lifetime: the entry bounces on time, not one backoff later.
                let untilExpiry = current.receivedAt.addingTimeInterval(TimeInterval(config.queueLifetime)).timeIntervalSinceNow
                let delay = max(1, min(Self.retryDelay(attempts: current.attempts + 1, base: TimeInterval(config.queueRetryInterval)), untilExpiry))
                try claim.defer(until: Date().addingTimeInterval(delay))
                logger.info("queue entry deferred", metadata: [
                    "pending": "\(current.pendingRecipients.count)", "retryIn": "\(Int(delay))s",
                    "reason": "\(current.pendingRecipients.first?.lastResult ?? "")",
                ])
            } else if current.recipients.contains(where: { $0.status == .failed }) && !bounced {
                // Failed with nobody to tell (null sender): kept in failed/ for the operator.
                try claim.fail()
                logger.warning("queue entry failed without a DSN", metadata: ["sender": "\(current.sender)"])
            } else {
                try claim.complete()
                logger.info("queue entry done", metadata: [
                    "delivered": "\(current.recipients.filter { $0.status == .delivered }.count)", "bounced": "\(failures.count)",
                ])
            }
        } catch {
            logger.error("cannot update queue entry", metadata: ["error": "\(error)"])
        }
    }

    static func failed(_ address: String, _ status: String, _ diagnostic: String) -> Outcome {
        Outcome(status: .failed, text: diagnostic, failure: .init(address: address, status: status, diagnostic: diagnostic, remoteMTA: nil))
    }

    /// Exponential backoff: base, 2×base, 4×base … up to `maxRetryDelay`.
    static func retryDelay(attempts: Int, base: TimeInterval) -> TimeInterval {
        min(maxRetryDelay, base * pow(2, Double(min(max(attempts - 1, 0), 16))))
    }

    /// Received fields in the header section.
    static func hopCount(_ message: [UInt8]) -> Int {
        var count = 0
        var lineStart = 0
        let needle = Array("received:".utf8)
        for index in message.indices where message[index] == 10 {
            let line = message[lineStart..<index]
            lineStart = index + 1
            if line.isEmpty || line == [13] { break }
            if line.count >= needle.count, zip(line.prefix(needle.count), needle).allSatisfy({ $0 | 0x20 == $1 }) { count += 1 }
        }
        return count
    }

    private func deliverLocally(_ message: [UInt8], to address: String, quota: Int64?) async -> Outcome {
        let mail = self.mail
        do {
            try await fileThreads.runIfActive { try mail.deliverLocally(message, to: address, quotaBytes: quota) }
            return Outcome(status: .delivered, text: "250 2.0.0 delivered to \(address)")
        } catch let error as MailStoreError {
            if case .overQuota = error { return Outcome(status: .pending, text: "452 4.2.2 mailbox full") }
            return Outcome(status: .pending, text: "451 4.3.0 \(error)")
        } catch {
            return Outcome(status: .pending, text: "451 4.3.0 \(error)")
        }
    }

    /// Queues one DSN to the sender for `failures`; false when none may be sent (null sender).
    private func queueBounce(
        for envelope: QueueEnvelope, failures: [DeliveryStatusNotification.FailedRecipient], message: [UInt8], config: NodeConfig,
        logger: Logger
    ) async -> Bool {
        guard DeliveryStatusNotification.isBounceable(sender: envelope.sender) else { return false }
        let dsn = DeliveryStatusNotification(
            reportingMTA: config.hostname, originalSender: envelope.sender, queueID: envelope.id, arrivalDate: envelope.receivedAt,
            recipients: failures, originalMessage: message)
        let received = "Return-Path: <>\r\nReceived: by \(config.hostname) (Service Package) id \(envelope.id).dsn; \(RFC5322Date.string(Date()))\r\n"
        let bytes = Array(received.utf8) + dsn.render()
        let (layout, node, lockOptions, sender) = (mail.layout, mail.nodeName, mail.lockOptions, envelope.sender)
        do {
            let queued = try await fileThreads.runIfActive {
                try QueueStore(layout: layout, node: node, lockOptions: lockOptions).enqueue(message: bytes, sender: "", recipients: [sender])
            }
            Counter(label: "svcpkg_queue_bounces_total").increment()
            logger.info("DSN queued", metadata: ["to": "\(sender)", "dsnID": "\(queued.id)", "failed": "\(failures.count)"])
            return true
        } catch {
            logger.error("cannot queue the DSN", metadata: ["to": "\(sender)", "error": "\(error)"])
            return false
        }
    }
}
