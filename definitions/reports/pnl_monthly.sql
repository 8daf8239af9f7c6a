-- Monthly P&L in EUR: net revenue of the month's purchases, refunds for returns and
-- cancellations, write-offs, cost of goods sold, gross margin, advertising and logistics.
with sold as (
    select coalesce(sum(p.net_revenue), 0) as revenue,
           coalesce(sum(p.cost_of_goods), 0) as cogs
    from purchases p
    where p.placed_at >= :period_start and p.placed_at < :period_end
),
refunded as (
    select coalesce(sum(rf.amount) filter (where rf.return_id is not null), 0) as returns,
           coalesce(sum(rf.amount) filter (where rf.return_id is null), 0) as cancellations
    from payments.refunds rf
    where rf.refunded_at >= :period_start and rf.refunded_at < :period_end
),
written_off as (
    select coalesce(sum(w.cost), 0) as write_offs
    from inventory.write_offs w
    where w.written_off_at >= :period_start and w.written_off_at < :period_end
),
advertising as (
    select coalesce(sum(cs.ad_spend), 0) as ad_spend
    from campaign_spend cs
),
shipping as (
    select coalesce(sum(s.shipping_cost), 0) as logistics
    from logistics.shipments s
    where s.shipped_at >= :period_start and s.shipped_at < :period_end
),
fees as (
    select coalesce(sum(f.amount), 0) as payment_fees
    from payments.fees f
    where f.charged_at >= :period_start and f.charged_at < :period_end
)
select
    round(sold.revenue, 2) as revenue,
    round(refunded.returns, 2) as refunded_returns,
    round(refunded.cancellations, 2) as refunded_cancellations,
    round(sold.cogs, 2) as cost_of_goods,
    round(written_off.write_offs, 2) as write_offs,
    round(sold.revenue - refunded.returns - sold.cogs - written_off.write_offs, 2)
        as gross_margin,
    round(advertising.ad_spend, 2) as ad_spend,
    round(shipping.logistics, 2) as logistics_cost,
    round(fees.payment_fees, 2) as payment_fees,
    round(sold.revenue - refunded.returns - sold.cogs - written_off.write_offs
          - advertising.ad_spend - shipping.logistics - fees.payment_fees, 2) as contribution
from sold, refunded, written_off, advertising, shipping, fees
